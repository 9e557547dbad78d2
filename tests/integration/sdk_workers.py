"""Worker functions the SDK's TaskHandler runs in its own (spawned) processes.

Rules: module-level functions only (the SDK pickles them by qualified name into
`spawn`ed processes); each is deterministic in its input, so tests can assert outputs.
Names are prefixed `it_` so they never collide with other tests' task types.
"""

# No `from __future__ import annotations`: the SDK hands the whole Task only to a
# parameter whose annotation *is* the Task class (a string annotation would not match).
from typing import Any

from conductor.client.http.models.task import Task
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.task_result_status import TaskResultStatus
from conductor.client.worker.exception import NonRetryableException


def add(task: Task) -> dict[str, Any]:
    """`it_add`: {"sum": a + b}."""
    data = task.input_data
    return {"sum": data["a"] + data["b"]}


def square(task: Task) -> dict[str, Any]:
    """`it_square`: {"sq": i * i} (inside DO_WHILE loops)."""
    i = task.input_data.get("i") or 0
    return {"sq": i * i, "iteration": task.iteration}


def fanout(task: Task) -> dict[str, Any]:
    """`it_fanout`: dynamic fork tasks, one `it_add` per pair in `pairs`."""
    pairs = task.input_data["pairs"]
    tasks = [
        {"name": "it_add", "taskReferenceName": f"add_{i}", "type": "SIMPLE"}
        for i in range(len(pairs))
    ]
    inputs = {f"add_{i}": {"a": a, "b": b} for i, (a, b) in enumerate(pairs)}
    return {"dynamicTasks": tasks, "dynamicTasksInput": inputs}


def flaky(task: Task) -> TaskResult | dict[str, Any]:
    """`it_flaky`: fails (retryable) until retryCount reaches `succeed_on`; a terminal
    failure when `terminal` is set."""
    if task.input_data.get("terminal"):
        raise NonRetryableException("deliberate terminal failure")
    if task.retry_count < int(task.input_data.get("succeed_on", 0)):
        raise RuntimeError(f"deliberate failure on attempt {task.retry_count}")
    return {"attempt": task.retry_count}


def slow_progress(task: Task) -> TaskResult:
    """`it_progress`: IN_PROGRESS with a 1 s callback on the first poll, then COMPLETED."""
    result = TaskResult(
        task_id=task.task_id,
        workflow_instance_id=task.workflow_instance_id,
        worker_id="it-worker",
    )
    if task.poll_count <= 1:
        result.status = TaskResultStatus.IN_PROGRESS
        result.callback_after_seconds = 1
        result.output_data = {"progress": 50}
    else:
        result.status = TaskResultStatus.COMPLETED
        result.output_data = {"progress": 100, "polls": task.poll_count}
    return result
