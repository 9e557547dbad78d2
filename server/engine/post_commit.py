"""After a commit: wake pollers and the sweeper, then perform the decision's actions.

Rules: the commit stands whatever happens here. Child starts, parent notifications,
terminations, failure workflows and event publishing are awaited in line (so the API
call that caused them returns with their effects visible); RunSystemTask goes to the
engine's nursery. A failing action is logged, never raised to the caller.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from core.decisions import (
    ChildWorkflowUpdate,
    NotifyParent,
    PublishEvent,
    RunSystemTask,
    StartChildWorkflow,
    StartFailureWorkflow,
    SystemTaskResult,
    Terminate,
    TerminateWorkflow,
)
from core.enums import TASK_TERMINAL, WORKFLOW_TERMINAL
from core.errors import NotFound, PodiumError
from core.models import Workflow
from core.store import DECIDER_QUEUE
from server.engine.executor import Outcome
from server.engine.views import find_task

if TYPE_CHECKING:
    from server.engine.engine import Engine

log = logging.getLogger("podium.engine")


async def after_commit(engine: Engine, outcome: Outcome) -> None:
    workflow = outcome.workflow
    if outcome.committed:
        for op in outcome.queue_ops:
            if op.kind != "push":
                continue
            if op.queue == DECIDER_QUEUE:
                engine.sweeper.notify(outcome.wake_at_ms)
            else:
                engine.task_owners.remember(op.message_id, workflow.workflow_id)
                engine.waiters.notify_later(op.queue, op.delay_ms)
        engine.limits.reconcile(workflow)
        changed = engine._changes.pop(workflow.workflow_id, None)
        if changed is not None:
            changed.set()
    elif outcome.wake_at_ms:
        engine.sweeper.notify(outcome.wake_at_ms)
    for action in outcome.actions:
        # The commit stands whatever happens here: an action that fails is logged
        # (the sweeper's repair and the decider's re-offers recover what they can).
        try:
            await perform(engine, workflow, action)
        except PodiumError as exc:
            log.warning("workflow %s: %r failed: %s", workflow.workflow_id, action, exc)
        except Exception:
            log.exception("workflow %s: %r failed", workflow.workflow_id, action)


async def perform(engine: Engine, workflow: Workflow, action: Any) -> None:
    if isinstance(action, RunSystemTask):
        engine.system_tasks.submit(workflow, action)
    elif isinstance(action, StartChildWorkflow):
        await engine.system_tasks.start_child(workflow, action)
    elif isinstance(action, NotifyParent):
        await notify_parent(engine, workflow, action)
    elif isinstance(action, TerminateWorkflow):
        await terminate_quietly(engine, action.workflow_id, action.reason)
    elif isinstance(action, StartFailureWorkflow):
        await engine.system_tasks.start_failure_workflow(workflow, action)
    elif isinstance(action, PublishEvent):
        await engine.events.publish(action.queue, action.payload, message_id=action.message_id)
    else:
        log.error("workflow %s: unknown action %r", workflow.workflow_id, action)


async def notify_parent(engine: Engine, child: Workflow, action: NotifyParent) -> None:
    reason = child.reason_for_incompletion
    event = ChildWorkflowUpdate(
        task_id=action.parent_task_id,
        child_workflow_id=child.workflow_id,
        child_status=child.status,
        child_output=dict(child.output),
        reason_for_incompletion=reason if isinstance(reason, str) else None,
    )

    def waiting(parent: Workflow) -> bool:
        task = find_task(parent, action.parent_task_id)
        return (
            task is not None
            and task.status not in TASK_TERMINAL
            and parent.status not in WORKFLOW_TERMINAL
        )

    try:
        await engine.apply(action.parent_workflow_id, event, guard=waiting)
    except NotFound:
        log.info("child %s: parent %s is gone", child.workflow_id, action.parent_workflow_id)


async def terminate_quietly(engine: Engine, workflow_id: str, reason: str) -> None:
    with contextlib.suppress(NotFound):
        await engine.apply(
            workflow_id,
            Terminate(reason=reason),
            guard=lambda wf: wf.status not in WORKFLOW_TERMINAL,
        )


async def system_task_result(engine: Engine, workflow_id: str, result: SystemTaskResult) -> None:
    """Feed an async system task's outcome back (ignored if the task is already done)."""

    def pending(workflow: Workflow) -> bool:
        task = find_task(workflow, result.task_id)
        return (
            task is not None
            and task.status not in TASK_TERMINAL
            and workflow.status not in WORKFLOW_TERMINAL
        )

    await engine.apply(workflow_id, result, guard=pending)
