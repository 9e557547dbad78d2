"""Direct hand-off in update-v2: the update's own decision hands its next task to the worker.

Rules:
- Asked after the update is staged, before the commit (Executor.apply's `then`): when the
  staged decision queues a task, with no delivery delay, in the queue update-v2 would poll
  next (the completed task's type and domain), that task is decided TaskPolled for the
  updating worker in the same staged decision and its queue push is dropped. One commit
  then holds the update and the claim; the task never enters the queue, so no waiter is
  woken and no task_owners entry is made for it.
- Only for a RUNNING workflow whose updated task ended, and only if the task's admission
  limits (server/engine/limits.py) let it start now; it is then counted as started, as a
  claim would count it. Otherwise nothing is handed off and update-v2 polls as before.
- Of several candidates (a FORK schedules many) the first queued one is handed off; the
  others stay queued for any worker.
- Asked again on every attempt of the apply (a version conflict decides from scratch):
  each call starts over, and a task is counted as started once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.decisions import Event, TaskPolled
from core.enums import TASK_TERMINAL, TaskStatus, WorkflowStatus
from core.models import Task
from server.engine.executor import Staged
from server.engine.views import find_task, queue_name

if TYPE_CHECKING:
    from server.engine.engine import Engine


class Handoff:
    """The `then` of one update-v2: picks the task to hand to `worker_id`, if any."""

    def __init__(self, engine: Engine, task_id: str, worker_id: str | None) -> None:
        self._engine = engine
        self._task_id = task_id  # the task being updated
        self._worker_id = worker_id
        self._started: str | None = None  # counted by the limits already
        self.handed: str | None = None  # the task handed off by the last attempt

    def __call__(self, staged: Staged) -> list[Event]:
        self.handed = None
        workflow = staged.workflow
        if workflow.status is not WorkflowStatus.RUNNING:
            return []
        done = find_task(workflow, self._task_id)
        if done is None or done.status not in TASK_TERMINAL:
            return []
        domain = done.domain if isinstance(done.domain, str) and done.domain else None
        queue = queue_name(done.task_type, domain)
        ops = staged.queue_ops
        for i, op in enumerate(ops):
            if op.kind != "push" or op.queue != queue or op.delay_ms > 0:
                continue
            task = find_task(workflow, op.message_id)
            if task is None or task.status is not TaskStatus.SCHEDULED:
                continue
            if any(later.message_id == op.message_id for later in ops[i + 1 :]):
                continue  # removed or pushed again later in the same decision
            if not self._admit(workflow.workflow_id, task):
                continue
            del ops[i]
            self.handed = task.task_id
            return [TaskPolled(task_id=task.task_id, worker_id=self._worker_id)]
        return []

    def _admit(self, workflow_id: str, task: Task) -> bool:
        if self._started == task.task_id:
            return True  # admitted by an earlier attempt
        if not admit_now(self._engine, workflow_id, task):
            return False
        self._started = task.task_id
        return True


def admit_now(engine: Engine, workflow_id: str, task: Task) -> bool:
    """Whether `task`'s admission limits let it start now; if so it is counted as started,
    as a claim would count it (server/engine/limits.py)."""
    task_def = engine.metadata.cached_task_defs().get(task.task_def_name or task.task_type)
    now = engine.now_ms()
    if engine.limits.delay_ms(task, task_def, now):
        return False
    engine.limits.started(workflow_id, task, task_def, now)
    return True
