"""Shapes the API returns that are derived from a Workflow: summaries, task lookups.

Rules: pure functions, no IO. Times in summaries are ISO-8601 UTC with milliseconds
and a `Z` suffix; input/output are JSON strings (Conductor's WorkflowSummary).
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

import msgspec

from core.enums import TASK_TERMINAL, WORKFLOW_TERMINAL
from core.models import UNSET, Task, UnsetType, Workflow, WorkflowSummary

T = TypeVar("T")

_json = msgspec.json.Encoder()


def iso_ms(epoch_ms: int) -> str:
    stamp = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _present(value: T) -> T | UnsetType:
    # A null field is omitted from the summary, as Conductor (Jackson NON_NULL) does.
    return UNSET if value is None else value


def to_summary(workflow: Workflow) -> WorkflowSummary:
    """Conductor's search hit for `workflow`."""
    ended = workflow.status in WORKFLOW_TERMINAL and workflow.end_time > 0
    start = workflow.start_time or workflow.create_time
    return WorkflowSummary(
        workflow_type=workflow.workflow_name,
        version=workflow.workflow_version,
        workflow_id=workflow.workflow_id,
        status=workflow.status,
        start_time=iso_ms(start),
        update_time=iso_ms(workflow.update_time) if workflow.update_time else UNSET,
        end_time=iso_ms(workflow.end_time) if ended else UNSET,
        correlation_id=_present(workflow.correlation_id),
        input=_json.encode(workflow.input).decode(),
        output=_json.encode(workflow.output).decode(),
        reason_for_incompletion=_present(workflow.reason_for_incompletion),
        execution_time=max(0, workflow.end_time - start) if ended else 0,
        event=_present(workflow.event),
        failed_reference_task_names=",".join(workflow.failed_reference_task_names),
        failed_task_names=list(workflow.failed_task_names),
        priority=workflow.priority,
        created_by=_present(workflow.created_by),
        task_to_domain=dict(workflow.task_to_domain),
        idempotency_key=_present(workflow.idempotency_key),
        parent_workflow_id=_present(workflow.parent_workflow_id),
    )


def find_task(workflow: Workflow, task_id: str) -> Task | None:
    for task in workflow.tasks:
        if task.task_id == task_id:
            return task
    return None


def pending_task_by_ref(workflow: Workflow, ref: str) -> Task | None:
    """The latest non-terminal task whose reference name is `ref` (or `ref__N` in a loop)."""
    best: Task | None = None
    for task in workflow.tasks:
        name = task.reference_task_name
        if name != ref and not (name.startswith(ref + "__") and name[len(ref) + 2 :].isdigit()):
            continue
        if task.status in TASK_TERMINAL:
            continue
        if best is None or task.seq >= best.seq:
            best = task
    return best


def task_queue(task: Task) -> str:
    """The queue a worker task's message lives in: `[domain:]type[@namespace][-group]`
    (spec 5.1; the decider names queues the same way)."""
    domain = task.domain
    name = f"{domain}:{task.task_type}" if isinstance(domain, str) and domain else task.task_type
    namespace = task.execution_name_space
    if isinstance(namespace, str) and namespace:
        name = f"{name}@{namespace}"
    group = task.isolation_group_id
    if isinstance(group, str) and group:
        name = f"{name}-{group}"
    return name


def queue_name(task_type: str, domain: str | None) -> str:
    return f"{domain}:{task_type}" if domain else task_type
