"""The sweeper: wakes workflows whose timer is due, and repairs lost queue messages.

Rules:
- It pops due workflow ids from the decider queue with a visibility timeout
  (`sweep_unack_ms`): a sweeper that dies mid-sweep leaves the id to come back. The
  decide that follows re-arms (push) or removes the message in its own commit.
- It sleeps exactly until the earliest timer it knows of: every commit in this process
  reports its timer (`notify`), and an earlier one interrupts the sleep. Timers more than
  `sweeper_exact_horizon_ms` ahead, timers pushed by other processes, and ids coming
  back from an expired visibility timeout are picked up within `sweeper_max_sleep_ms`.
- Repair (spec 5.9), after every Sweep of a RUNNING workflow: every SCHEDULED worker task
  must have its message (a missing one is pushed again, due after its callback delay);
  an IN_PROGRESS SUB_WORKFLOW task's child must exist (else it is created with the
  decided id) and, if the child already ended, the parent is notified again.
- One failing workflow never stops the loop: its error is logged, its id comes back
  after the visibility timeout.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from core.decisions import NotifyParent, StartChildWorkflow, Sweep
from core.enums import SYSTEM_TASK_TYPES, WORKFLOW_TERMINAL, TaskStatus, TaskType, WorkflowStatus
from core.errors import NotFound, PodiumError
from core.models import Workflow, WorkflowDef
from core.store import DECIDER_QUEUE
from server.engine.persistence import from_record
from server.engine.views import task_queue

if TYPE_CHECKING:
    from server.engine.engine import Engine

log = logging.getLogger("podium.sweeper")

# Keep the heap of known timers bounded; beyond it, the max-sleep poll covers the rest.
_MAX_KNOWN_TIMERS = 100_000


class Sweeper:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._timers: list[int] = []  # absolute due times (ms) this process pushed
        self._wake = trio.Event()
        self._sleeping_until = 0
        self._due_now = False
        self.swept = 0  # workflows swept so far (tests and metrics)
        self.repaired = 0  # messages re-pushed by repair

    def notify(self, due_ms: int) -> None:
        """A timer at `due_ms` was set: wake up earlier if it is before the current sleep."""
        if due_ms <= 0:
            return
        now = self._engine.now_ms()
        # Far timers are left to the periodic pop (within sweeper_max_sleep_ms of due):
        # the heap keeps only the near ones, so it stays small under heavy traffic.
        near = due_ms - now <= self._engine.config.sweeper_exact_horizon_ms
        if near and len(self._timers) < _MAX_KNOWN_TIMERS:
            heapq.heappush(self._timers, due_ms)
        if due_ms < self._sleeping_until:
            self._wake.set()
        elif self._sleeping_until == 0 and due_ms <= now:
            # Set while a round runs (often by that round's own sweeps): pop again at
            # once instead of discarding it with the other past-due entries.
            self._due_now = True

    async def run(self) -> None:
        engine = self._engine
        config = engine.config
        while True:
            now = engine.now_ms()
            try:
                ids = await engine.store.pop(
                    DECIDER_QUEUE, config.sweep_batch, unack_ms=config.sweep_unack_ms, now_ms=now
                )
            except Exception:
                # The store is unreachable: keep the sweeper alive and try again soon.
                log.exception("sweeper: popping the decider queue failed")
                await trio.sleep(config.sweeper_max_sleep_ms / 1000)
                continue
            for workflow_id in ids:
                await self.sweep_one(workflow_id)
            if len(ids) == config.sweep_batch or self._due_now:
                self._due_now = False
                await trio.lowlevel.checkpoint()
                continue
            now = engine.now_ms()
            while self._timers and self._timers[0] <= now:
                heapq.heappop(self._timers)
            until = now + config.sweeper_max_sleep_ms
            if self._timers:
                until = min(until, self._timers[0])
            self._sleeping_until = until
            self._wake = trio.Event()
            with trio.move_on_after(max(0, until - now) / 1000):
                await self._wake.wait()
            self._sleeping_until = 0

    async def sweep_one(self, workflow_id: str) -> None:
        """Decide one due workflow (Sweep), then repair it if nothing changed."""
        engine = self._engine
        self.swept += 1
        try:
            outcome = await engine.executor.apply(
                workflow_id, [Sweep()], guard=lambda wf: wf.status not in WORKFLOW_TERMINAL
            )
        except NotFound:
            with contextlib.suppress(Exception):
                await engine.store.remove(DECIDER_QUEUE, workflow_id)
            return
        except PodiumError as exc:
            log.warning("sweep of %s failed: %s", workflow_id, exc)
            return
        except Exception:
            # A bug must not stop the sweeper; the id comes back after sweep_unack_ms.
            log.exception("sweep of %s failed", workflow_id)
            return
        try:
            if outcome.skipped:
                await engine.store.remove(DECIDER_QUEUE, workflow_id)
                return
            await engine._after_commit(outcome)
            # The decider may rewrite the workflow on every Sweep, so repair always runs
            # (one `contains` per SCHEDULED worker task; sweeps are rare per workflow).
            if outcome.workflow.status is WorkflowStatus.RUNNING:
                await self.repair(outcome.workflow)
        except Exception:
            log.exception("sweep of %s: repair failed", workflow_id)

    async def repair(self, workflow: Workflow) -> int:
        """Re-push missing messages of SCHEDULED worker tasks; returns how many."""
        engine = self._engine
        store = engine.store
        now = engine.now_ms()
        pushed = 0
        for task in workflow.tasks:
            if task.status is not TaskStatus.SCHEDULED or task.task_type in SYSTEM_TASK_TYPES:
                continue
            queue = task_queue(task)
            if await store.contains(queue, task.task_id):
                continue
            due = task.scheduled_time + task.callback_after_seconds * 1000
            delay = max(0, due - now)
            await store.push(
                queue, task.task_id, priority=workflow.priority, delay_ms=delay, now_ms=now
            )
            engine.waiters.notify_later(queue, delay)
            pushed += 1
            log.info(
                "repaired: re-queued task %s of workflow %s", task.task_id, workflow.workflow_id
            )
        pushed += await self._repair_children(workflow)
        self.repaired += pushed
        return pushed

    async def _repair_children(self, workflow: Workflow) -> int:
        """IN_PROGRESS SUB_WORKFLOW tasks whose child is missing (the process died
        between the parent's commit and the child's creation) get their child; those
        whose child already ended (a lost notification) are told now."""
        engine = self._engine
        repaired = 0
        for task in workflow.tasks:
            child_id = task.sub_workflow_id
            if (
                task.task_type != TaskType.SUB_WORKFLOW
                or task.status is not TaskStatus.IN_PROGRESS
                or not isinstance(child_id, str)
                or not child_id
            ):
                continue
            record = await engine.store.load(child_id)
            if record is None:
                action = _child_action(workflow, task.task_id, child_id, task.input_data)
                if action is not None:
                    log.info("repaired: creating lost child %s of %s", child_id, task.task_id)
                    await engine.system_tasks.start_child(workflow, action)
                    repaired += 1
            elif record.status in _TERMINAL_VALUES:
                log.info("repaired: re-notifying %s of child %s", workflow.workflow_id, child_id)
                await engine._notify_parent(
                    from_record(record),
                    NotifyParent(
                        parent_workflow_id=workflow.workflow_id, parent_task_id=task.task_id
                    ),
                )
                repaired += 1
        return repaired


_TERMINAL_VALUES = frozenset(s.value for s in WORKFLOW_TERMINAL)


def _child_action(
    parent: Workflow, task_id: str, child_id: str, data: dict[str, Any]
) -> StartChildWorkflow | None:
    """Rebuild the StartChildWorkflow the decider emitted, from the task's input (the
    decider records subWorkflowName/Version/Definition/TaskToDomain, priority and
    workflowInput there)."""
    name = data.get("subWorkflowName")
    if not isinstance(name, str) or not name:
        return None
    version = data.get("subWorkflowVersion")
    raw_def = data.get("subWorkflowDefinition")
    domains = data.get("subWorkflowTaskToDomain")
    priority = data.get("priority")
    correlation = parent.correlation_id
    return StartChildWorkflow(
        task_id=task_id,
        workflow_id=child_id,
        name=name,
        version=version if isinstance(version, int) else None,
        workflow_def=msgspec.convert(raw_def, WorkflowDef) if isinstance(raw_def, dict) else None,
        input=dict(data.get("workflowInput") or {}),
        correlation_id=correlation if isinstance(correlation, str) else None,
        task_to_domain=domains if isinstance(domains, dict) else dict(parent.task_to_domain),
        priority=priority if isinstance(priority, int) else parent.priority,
    )
