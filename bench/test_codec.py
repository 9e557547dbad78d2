"""msgspec encode/decode of the wire models the server handles most: Workflow and Task.

Rules: the models come from a real decider run (a finished 10-step sequential
workflow), so field presence matches production; the hot-path twin does not matter here.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.decider import new_workflow, sequential_def
from core import codec
from core import decisions as ev
from core.enums import TaskResultStatus
from core.models import Workflow
from core.models.execution import Task
from hotpath import load_twin


@pytest.fixture(scope="module")
def finished_workflow() -> Workflow:
    decider = load_twin("decider")
    wf = new_workflow(sequential_def(), 1)
    decider.decide(wf, ev.StartWorkflow(), ev.DeciderEnv(), 10)
    while wf.status.value == "RUNNING":
        task = next(t for t in wf.tasks if t.status.value == "SCHEDULED")
        polled = ev.TaskPolled(task_id=task.task_id, worker_id="w")
        decider.decide(wf, polled, ev.DeciderEnv(), 20)
        update = ev.TaskUpdate(
            task_id=task.task_id,
            status=TaskResultStatus.COMPLETED,
            output_data={"amount": 11, "address": {"region": "eu-west"}},
        )
        decider.decide(wf, update, ev.DeciderEnv(), 30)
    assert len(wf.tasks) == 10
    return wf


def test_encode_workflow(benchmark: Any, finished_workflow: Workflow) -> None:
    benchmark.group = "codec: Workflow (10 tasks)"
    assert benchmark(codec.encode, finished_workflow).startswith(b"{")


def test_decode_workflow(benchmark: Any, finished_workflow: Workflow) -> None:
    benchmark.group = "codec: Workflow (10 tasks)"
    data = codec.encode(finished_workflow)
    decoded = benchmark(codec.decode, data, Workflow)
    assert decoded.workflow_id == finished_workflow.workflow_id
    assert len(decoded.tasks) == 10


def test_encode_task(benchmark: Any, finished_workflow: Workflow) -> None:
    benchmark.group = "codec: Task"
    assert benchmark(codec.encode, finished_workflow.tasks[3]).startswith(b"{")


def test_decode_task(benchmark: Any, finished_workflow: Workflow) -> None:
    benchmark.group = "codec: Task"
    data = codec.encode(finished_workflow.tasks[3])
    assert benchmark(codec.decode, data, Task).task_id == finished_workflow.tasks[3].task_id
