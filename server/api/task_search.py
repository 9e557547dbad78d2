"""`GET /api/tasks/search` and `/search-v2`: task search without a search index.

Rules:
- Podium keeps no task index, so task search scans the tasks of the most recently
  started workflows (at most MAX_SCAN_WORKFLOWS of them, newest first) and filters them
  here. Deliberately bounded: it answers operators' questions about recent work, it is
  not a report over all history (docs/compatibility.md).
- `query` takes the subset of Conductor's syntax that its PostgreSQL index backend
  supports: `field (=|!=|>|<) value` and `field IN (v, ...)`, joined by AND; strings may
  be quoted; `*` in an `=` value is a wildcard. Fields: taskId, taskType, taskDefName,
  referenceTaskName, status, workflowId, workflowType, correlationId, domain,
  startTime, endTime, updateTime, scheduledTime (epoch ms). Anything else is a 400
  naming the position.
- `freeText` terms (split on spaces, `*` = everything) must all occur in the task's id,
  type, reference name, workflow id or its input/output JSON, case-insensitively.
- `sort=field:ASC|field:DESC`; default newest scheduled first; taskId breaks ties.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from core.errors import BadRequest
from core.models import Task, TaskSummary
from core.store import SearchRequest
from server.engine import Engine

MAX_SCAN_WORKFLOWS = 2000
_PAGE = 200

_TEXT = {
    "taskId": "task_id",
    "taskType": "task_type",
    "taskDefName": "task_def_name",
    "referenceTaskName": "reference_task_name",
    "status": "status",
    "workflowId": "workflow_instance_id",
    "workflowType": "workflow_type",
    "correlationId": "correlation_id",
    "domain": "domain",
}
_NUMBER = {
    "startTime": "start_time",
    "endTime": "end_time",
    "updateTime": "update_time",
    "scheduledTime": "scheduled_time",
}
_FIELDS = {
    name.lower(): (name, attr, attr in _NUMBER.values())
    for name, attr in [*_TEXT.items(), *_NUMBER.items()]
}
_TOKEN = re.compile(
    r"\s*(?:(?P<op>!=|=|>|<)|(?P<punct>[(),])|'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<word>[^\s(),'\"=!<>]+))"
)
_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    attr: str
    numeric: bool
    op: str  # "=", "!=", ">", "<", "IN"
    values: tuple[str | int, ...]


def _tokens(query: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        match = _TOKEN.match(query, pos)
        if match is None or match.end() == pos:
            raise BadRequest(
                f"query: unexpected character at position {pos}: {query[pos : pos + 10]!r}"
            )
        kind = match.lastgroup or ""
        text = match.group(kind)
        out.append(("str" if kind in ("sq", "dq") else kind, text, match.start(kind)))
        pos = match.end()
    return out


def parse_task_query(query: str) -> list[Condition]:
    """Parse a task-search `query` into AND-ed conditions (empty: match everything).

    Raises:
        BadRequest: unknown field, operator or value, with its position.
    """
    toks = _tokens(query)
    conditions: list[Condition] = []
    i = 0

    def take(expected: str) -> tuple[str, str, int]:
        nonlocal i
        if i >= len(toks):
            raise BadRequest(f"query: expected {expected} at the end of the query")
        tok = toks[i]
        i += 1
        return tok

    def value(name: str, numeric: bool) -> str | int:
        kind, text, pos = take(f"a value for {name}")
        if kind not in ("word", "str"):
            raise BadRequest(f"query: expected a value for {name} at position {pos}, got {text!r}")
        if not numeric:
            return text
        try:
            number = int(text)
        except ValueError:
            raise BadRequest(
                f"query: {name} at position {pos} takes an integer (epoch ms), got {text!r}"
            ) from None
        if abs(number) >= 2**63:
            raise BadRequest(f"query: {name} at position {pos} is out of range: {text}")
        return number

    while i < len(toks):
        kind, text, pos = take("a field")
        known = _FIELDS.get(text.lower()) if kind == "word" else None
        if known is None:
            names = ", ".join([*_TEXT, *_NUMBER])
            raise BadRequest(f"query: unknown field {text!r} at position {pos}: use one of {names}")
        name, attr, numeric = known
        kind, op, pos = take("an operator")
        if kind == "op":
            conditions.append(Condition(name, attr, numeric, op, (value(name, numeric),)))
        elif kind == "word" and op.upper() == "IN":
            if take("'('")[1] != "(":
                raise BadRequest(f"query: expected '(' after IN at position {pos}")
            values = [value(name, numeric)]
            while True:
                sep = take("',' or ')'")
                if sep[1] == ")":
                    break
                if sep[1] != ",":
                    raise BadRequest(f"query: expected ',' or ')' at position {sep[2]}")
                values.append(value(name, numeric))
            conditions.append(Condition(name, attr, numeric, "IN", tuple(values)))
        else:
            raise BadRequest(
                f"query: task search supports =, !=, >, < and IN; got {op!r} at position {pos}"
            )
        if i < len(toks):
            kind, text, pos = take("AND")
            if kind != "word" or text.upper() != "AND":
                raise BadRequest(
                    f"query: task search joins conditions with AND only; got {text!r} at "
                    f"position {pos}"
                )
            if i >= len(toks):
                raise BadRequest("query: expected a condition after AND")
    return conditions


def _actual(task: Task, cond: Condition) -> str | int | None:
    value: Any = getattr(task, cond.attr)
    if hasattr(value, "value"):  # enums
        value = value.value
    if value in ("", None, msgspec.UNSET) or (cond.numeric and value == 0):
        return None
    return value  # type: ignore[no-any-return]


def _wildcard_equal(actual: str | int, expected: str | int) -> bool:
    if isinstance(expected, str) and "*" in expected:
        pattern = ".*".join(re.escape(p) for p in expected.split("*"))
        return re.fullmatch(pattern, str(actual), re.DOTALL) is not None
    return actual == expected


def _holds(task: Task, cond: Condition) -> bool:
    actual = _actual(task, cond)
    if cond.op == "!=":
        return actual is None or not _wildcard_equal(actual, cond.values[0])
    if actual is None:
        return False
    if cond.op == "=":
        return _wildcard_equal(actual, cond.values[0])
    if cond.op == "IN":
        return actual in cond.values
    if cond.op == ">":
        return actual > cond.values[0]  # type: ignore[operator]
    return actual < cond.values[0]  # type: ignore[operator]


def _free_text_ok(task: Task, terms: list[str]) -> bool:
    if not terms:
        return True
    haystack = " ".join(
        (
            task.task_id,
            task.task_type,
            task.reference_task_name,
            task.workflow_instance_id,
            _json.encode([task.input_data, task.output_data]).decode(),
        )
    ).lower()
    return all(term in haystack for term in terms)


def _sort_keys(sort: str) -> list[tuple[str, bool]]:
    keys: list[tuple[str, bool]] = []
    for part in filter(None, (p.strip() for p in sort.split("|"))):
        name, _, order = part.partition(":")
        known = _FIELDS.get(name.strip().lower())
        if known is None:
            raise BadRequest(
                f"sort: unknown field {name!r}: use one of {', '.join([*_TEXT, *_NUMBER])}"
            )
        if order.strip().upper() not in ("", "ASC", "DESC"):
            raise BadRequest(f"sort: order must be ASC or DESC, got {order!r}")
        keys.append((known[1], order.strip().upper() == "DESC"))
    return keys or [("scheduled_time", True)]


async def search_tasks(engine: Engine, request: SearchRequest) -> tuple[int, list[Task]]:
    """Matching tasks of recent workflows, sorted and paged: (total, page)."""
    conditions = parse_task_query(request.query)
    terms = [t.lower() for t in request.free_text.split() if t and t != "*"]
    keys = _sort_keys(request.sort)
    found: list[Task] = []
    start = 0
    while start < MAX_SCAN_WORKFLOWS:
        page = await engine.search_v2(SearchRequest(start=start, size=_PAGE))
        for workflow in page.results:
            for task in workflow.tasks:
                if _free_text_ok(task, terms) and all(_holds(task, c) for c in conditions):
                    found.append(task)
        start += _PAGE
        if start >= page.total_hits or not page.results:
            break
    found.sort(key=lambda t: t.task_id)
    for attr, descending in reversed(keys):
        found.sort(key=lambda t, a=attr: _sort_value(t, a), reverse=descending)  # type: ignore[misc]
    return len(found), found[request.start : request.start + request.size]


def _sort_value(task: Task, attr: str) -> tuple[bool, Any]:
    value: Any = getattr(task, attr)
    if hasattr(value, "value"):
        value = value.value
    if value is None or value is msgspec.UNSET:
        return (False, "")
    return (True, value)


def _iso(epoch_ms: int) -> str:
    stamp = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_task_summary(task: Task) -> TaskSummary:
    """Conductor's TaskSummary for one task (times as ISO-8601 UTC strings)."""
    ended = task.end_time > 0
    return TaskSummary(
        workflow_id=task.workflow_instance_id,
        workflow_type=task.workflow_type if isinstance(task.workflow_type, str) else "",
        task_id=task.task_id,
        task_def_name=task.task_def_name or task.task_type,
        task_type=task.task_type,
        status=task.status,
        scheduled_time=_iso(task.scheduled_time),
        start_time=_iso(task.start_time) if task.start_time else msgspec.UNSET,
        update_time=_iso(task.update_time) if task.update_time else msgspec.UNSET,
        end_time=_iso(task.end_time) if ended else msgspec.UNSET,
        correlation_id=task.correlation_id,
        reason_for_incompletion=task.reason_for_incompletion,
        execution_time=max(0, task.end_time - task.start_time) if ended and task.start_time else 0,
        queue_wait_time=max(0, task.start_time - task.scheduled_time) if task.start_time else 0,
        input=_json.encode(task.input_data).decode(),
        output=_json.encode(task.output_data).decode(),
        workflow_priority=task.workflow_priority,
        domain=task.domain,
    )


__all__ = ["MAX_SCAN_WORKFLOWS", "parse_task_query", "search_tasks", "to_task_summary"]
