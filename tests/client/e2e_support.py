"""Helpers for the client's end-to-end tests on a real `podium server`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import trio

from client import ConductorClient, TaskRunner
from core.enums import WORKFLOW_TERMINAL
from core.models import TaskDef, Workflow, WorkflowDef, WorkflowTask


def unique(prefix: str) -> str:
    """A name no other test uses (the session shares one server)."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def simple(name: str, ref: str, **inputs: Any) -> WorkflowTask:
    return WorkflowTask(name=name, task_reference_name=ref, input_parameters=inputs)


async def register(
    client: ConductorClient, workflow: WorkflowDef, task_defs: Sequence[TaskDef]
) -> None:
    await client.register_task_defs(list(task_defs))
    await client.register_workflow_def(workflow)


async def wait_terminal(
    client: ConductorClient, workflow_ids: Sequence[str], timeout_s: float = 30
) -> list[Workflow]:
    """Every workflow, once each is terminal (fails the test after `timeout_s`)."""
    done: dict[str, Workflow] = {}
    with trio.fail_after(timeout_s):
        while len(done) < len(workflow_ids):
            for wid in workflow_ids:
                if wid not in done:
                    status = await client.get_workflow_status(wid)
                    if status.status in WORKFLOW_TERMINAL:
                        done[wid] = await client.get_workflow(wid)
            await trio.sleep(0.1)
    return [done[wid] for wid in workflow_ids]


async def start_runner(nursery: trio.Nursery, runner: TaskRunner) -> trio.Event:
    """Run `runner` in `nursery`; the event is set when `run()` has returned."""
    finished = trio.Event()

    async def go() -> None:
        try:
            await runner.run()
        finally:
            finished.set()

    nursery.start_soon(go)
    return finished
