"""Operator commands behind the workflow API (spec 5.8): the guards that turn a wrong
state into the status code Conductor answers with, then one decider event each.

Rules: guards run under the workflow lock on the freshly loaded workflow (Executor.apply),
so the state they check is the state the event is decided on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.decisions import Pause, ResetCallbacks, Restart, Resume, Retry, Terminate
from core.enums import WORKFLOW_TERMINAL, TaskStatus, WorkflowStatus
from core.errors import Conflict, IllegalTransition, NotFound
from core.models import Workflow, WorkflowDef
from core.store import DECIDER_QUEUE
from server.engine.views import task_queue

if TYPE_CHECKING:
    from server.engine.engine import Engine


async def pause(engine: Engine, workflow_id: str) -> None:
    """See Engine.pause."""

    def guard(wf: Workflow) -> bool:
        if wf.status in WORKFLOW_TERMINAL:
            raise Conflict(f"Workflow {workflow_id} is {wf.status.value}: cannot pause it")
        return wf.status is not WorkflowStatus.PAUSED

    await engine.apply(workflow_id, Pause(), guard=guard)


async def resume(engine: Engine, workflow_id: str) -> None:
    """See Engine.resume."""

    def guard(wf: Workflow) -> bool:
        if wf.status is not WorkflowStatus.PAUSED:
            raise IllegalTransition(
                f"Workflow {workflow_id} is {wf.status.value}, not PAUSED: cannot resume it"
            )
        return True

    await engine.apply(workflow_id, Resume(), guard=guard)


async def terminate(engine: Engine, workflow_id: str, reason: str | None = None) -> None:
    """See Engine.terminate."""

    def guard(wf: Workflow) -> bool:
        if wf.status is WorkflowStatus.TERMINATED:
            return False
        if wf.status in WORKFLOW_TERMINAL:
            raise Conflict(f"Cannot terminate a {wf.status.value} workflow.")
        return True

    await engine.apply(workflow_id, Terminate(reason=reason), guard=guard)


async def restart(
    engine: Engine, workflow_id: str, *, use_latest_definitions: bool = False
) -> None:
    """See Engine.restart."""
    latest: WorkflowDef | None = None
    if use_latest_definitions:
        current = await engine.get_workflow(workflow_id, include_tasks=False)
        latest = await engine.metadata.workflow_def(current.workflow_name, None)
        if latest is None:
            raise NotFound(f"No such workflow defined. name={current.workflow_name}")

    def guard(wf: Workflow) -> bool:
        if wf.status not in WORKFLOW_TERMINAL:
            raise Conflict(
                f"Workflow {workflow_id} is {wf.status.value}: only a terminal "
                "workflow can be restarted"
            )
        if latest is not None:
            wf.workflow_definition = latest
            wf.workflow_version = latest.version
        return True

    await engine.apply(workflow_id, Restart(), guard=guard)


async def retry(
    engine: Engine, workflow_id: str, *, resume_subworkflow_tasks: bool = False
) -> None:
    """See Engine.retry."""

    def guard(wf: Workflow) -> bool:
        if wf.status not in WORKFLOW_TERMINAL:
            raise NotFound(f"Workflow is still running. status={wf.status.value}")
        return True

    await engine.apply(
        workflow_id, Retry(resume_subworkflow_tasks=resume_subworkflow_tasks), guard=guard
    )


async def reset_callbacks(engine: Engine, workflow_id: str) -> None:
    """See Engine.reset_callbacks."""

    def guard(wf: Workflow) -> bool:
        if wf.status in WORKFLOW_TERMINAL:
            raise Conflict(f"Workflow {workflow_id} is {wf.status.value}")
        return True

    await engine.apply(workflow_id, ResetCallbacks(), guard=guard)


async def verify_and_repair(engine: Engine, workflow_id: str) -> bool:
    """See Engine.verify_and_repair."""
    _, workflow = await engine.executor.load(workflow_id)
    if workflow.status in WORKFLOW_TERMINAL:
        return False
    repaired = await engine.sweeper.repair(workflow)
    if workflow.status is WorkflowStatus.RUNNING and not await engine.store.contains(
        DECIDER_QUEUE, workflow_id
    ):
        await engine.requeue_sweep(workflow_id)
        repaired += 1
    return repaired > 0


async def remove(engine: Engine, workflow_id: str) -> None:
    """See Engine.remove."""
    async with engine.executor.locks.hold(workflow_id):
        _, workflow = await engine.executor.load(workflow_id)
        for task in workflow.tasks:
            if task.status is TaskStatus.SCHEDULED:
                await engine.store.remove(task_queue(task), task.task_id)
        engine.executor.cache.drop(workflow_id)
        await engine.store.delete(workflow_id)
        engine.limits.forget(workflow_id)
