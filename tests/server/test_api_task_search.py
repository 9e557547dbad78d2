"""server.api.task_search: the task query subset (=, !=, >, <, IN joined by AND)."""

from __future__ import annotations

import pytest

from core.enums import TaskStatus
from core.errors import BadRequest
from core.models import Task
from server.api.task_search import _holds, parse_task_query


def _task(**kw: object) -> Task:
    base: dict[str, object] = {
        "task_type": "encode",
        "status": TaskStatus.SCHEDULED,
        "reference_task_name": "e",
        "task_id": "t-1",
        "workflow_instance_id": "w-1",
        "scheduled_time": 100,
    }
    base.update(kw)
    return Task(**base)  # type: ignore[arg-type]


def _match(query: str, task: Task) -> bool:
    return all(_holds(task, c) for c in parse_task_query(query))


def test_conditions() -> None:
    task = _task()
    assert _match("", task)
    assert _match("taskType = encode AND status IN (SCHEDULED, IN_PROGRESS)", task)
    assert _match("tasktype = 'enc*'", task)
    assert not _match('taskType != "encode"', task)
    assert _match("scheduledTime > 99 AND scheduledTime < 101", task)
    assert not _match("endTime > 0", task)  # 0 is null: never matches a comparison
    assert _match("domain != x", task)  # null matches !=


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("nope = 1", "unknown field 'nope' at position 0"),
        ("taskType = a OR status = b", "AND only"),
        ("taskType BETWEEN 1 AND 2", "supports =, !=, >, < and IN"),
        ("startTime > soon", "takes an integer"),
        ("taskType = a AND", "after AND"),
        ("taskType IN (a, b", "',' or ')'"),
        ("taskType =", "a value for taskType"),
    ],
)
def test_errors_name_the_problem(query: str, fragment: str) -> None:
    with pytest.raises(BadRequest, match=None) as err:
        parse_task_query(query)
    assert fragment in err.value.message
