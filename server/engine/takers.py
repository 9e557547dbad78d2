"""Direct hand-off to waiting polls: a commit that queues a task gives it to a long poll
waiting on that queue in this process, instead of queueing it.

Rules:
- A poll about to wait opens a Taker for its queue (worker id, room = tasks it still
  wants) and closes it when it stops waiting; only open takers are offered tasks.
- `HandToWaiting` is the `then` of a start (server/engine/starting.py, Executor.create)
  and of every Engine.apply (task updates, operator commands, system-task results), after
  the caller's own `then` (update-v2's hand-off to the updating worker picks first). The
  sweeper and the poll's claims decide without it. After the decision is staged, each
  task it queues with no delivery delay, into a queue with an open taker that has room,
  and admitted by its limits now (server/engine/limits.py, counted as started, as a claim
  would count it), is decided TaskPolled for that taker's worker in the same staged
  decision and its queue push is dropped. One commit holds the decision and the claim;
  the task never enters the queue, so no waiter is woken and no pop or claim commit
  follows.
- A taker offered a task holds a reservation until the commit's outcome is known
  (`settle`): committed, the task as committed is delivered and the poll woken;
  otherwise the reservation is released. Closing a taker waits (the poll shields it) for
  its reservations to settle and returns what was delivered, so a poll whose client went
  away gives those tasks back (SCHEDULED again, re-queued), as a cancelled claim does.
- Asked again on every attempt (each call starts over); a task is counted as started
  once. A task handed this way may overtake older messages of its queue (the waiting
  poll found the queue empty when it began to wait; docs/compatibility.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from core.decisions import Event, TaskPolled
from core.enums import TaskStatus, WorkflowStatus
from core.models import Task
from server.engine.executor import Outcome, Staged
from server.engine.handoff import admit_now
from server.engine.views import find_task

if TYPE_CHECKING:
    from server.engine.engine import Engine


class Taker:
    """One waiting poll that may be handed tasks; `wake` is set when one arrives."""

    __slots__ = ("closed", "queue", "reserved", "room", "settled", "tasks", "wake", "worker_id")

    def __init__(self, queue: str, worker_id: str | None, room: int) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.room = room  # tasks it may still be offered
        self.reserved = 0  # offered to commits whose outcome is not known yet
        self.tasks: list[Task] = []
        self.closed = False
        self.wake = trio.Event()
        self.settled: trio.Event | None = None  # set when the last reservation settles


class Takers:
    """The open takers of this process, by queue."""

    def __init__(self) -> None:
        self._by_queue: dict[str, list[Taker]] = {}

    def open(self, queue: str, worker_id: str | None, room: int) -> Taker:
        taker = Taker(queue, worker_id, room)
        self._by_queue.setdefault(queue, []).append(taker)
        return taker

    def has_open(self, queue: str) -> bool:
        return queue in self._by_queue

    def reserve(self, queue: str) -> Taker | None:
        """An open taker of `queue` with room, its room taken by one task; None if none."""
        takers = self._by_queue.get(queue)
        if not takers:
            return None
        for taker in takers:
            if taker.room > 0:
                taker.room -= 1
                taker.reserved += 1
                if taker.room == 0:
                    self._unlist(taker)
                return taker
        return None

    def settle(self, taker: Taker, task: Task | None) -> None:
        """A reservation's outcome: `task` delivered (as committed), or None: released."""
        taker.reserved -= 1
        if task is not None:
            taker.tasks.append(task)
            taker.wake.set()
        elif not taker.closed:
            taker.room += 1
            if taker.room == 1:
                self._by_queue.setdefault(taker.queue, []).append(taker)
        if taker.reserved == 0 and taker.settled is not None:
            taker.settled.set()

    async def close(self, taker: Taker) -> list[Task]:
        """Stop offering `taker` tasks; wait for its reservations; what it was handed.
        Call shielded: the tasks must reach the poll (or be given back)."""
        if not taker.closed:
            taker.closed = True
            if taker.room > 0:
                self._unlist(taker)
        if taker.reserved:
            taker.settled = trio.Event()
            await taker.settled.wait()
        return taker.tasks

    def _unlist(self, taker: Taker) -> None:
        takers = self._by_queue.get(taker.queue)
        if takers is None:
            return
        try:
            takers.remove(taker)
        except ValueError:
            return
        if not takers:
            del self._by_queue[taker.queue]


class HandToWaiting:
    """The `then` of one start or apply: hands its queued tasks to open takers (module
    rules)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._started: set[str] = set()  # counted by the limits already
        self._offers: list[tuple[Taker, str]] = []  # (taker, task id) of the last attempt

    def __call__(self, staged: Staged) -> list[Event]:
        self.release()
        workflow = staged.workflow
        if workflow.status is not WorkflowStatus.RUNNING:
            return []
        takers = self._engine.takers
        ops = staged.queue_ops
        events: list[Event] = []
        kept = []
        for i, op in enumerate(ops):
            if op.kind != "push" or op.delay_ms > 0 or not takers.has_open(op.queue):
                kept.append(op)
                continue
            task = find_task(workflow, op.message_id)
            if (
                task is None
                or task.status is not TaskStatus.SCHEDULED
                or any(later.message_id == op.message_id for later in ops[i + 1 :])
            ):
                kept.append(op)
                continue
            taker = takers.reserve(op.queue)
            if taker is None:
                kept.append(op)
                continue
            if not self._admit(workflow.workflow_id, task):
                takers.settle(taker, None)
                kept.append(op)
                continue
            self._offers.append((taker, task.task_id))
            events.append(TaskPolled(task_id=task.task_id, worker_id=taker.worker_id))
        if events:
            ops[:] = kept
        return events

    def _admit(self, workflow_id: str, task: Task) -> bool:
        if task.task_id in self._started:
            return True  # admitted by an earlier attempt
        if not admit_now(self._engine, workflow_id, task):
            return False
        self._started.add(task.task_id)
        return True

    def settle(self, outcome: Outcome | None) -> None:
        """After the start or apply: deliver each offered task as the committed workflow
        holds it; with no committed outcome (None, skipped, or the create found the id
        taken) every reservation is released."""
        offers, self._offers = self._offers, []
        takers = self._engine.takers
        committed = outcome.workflow if outcome is not None and outcome.committed else None
        for taker, task_id in offers:
            task = None if committed is None else find_task(committed, task_id)
            if task is not None and task.status is not TaskStatus.IN_PROGRESS:
                task = None
            takers.settle(taker, task)

    def release(self) -> None:
        """Release the reservations of an attempt that will not be committed."""
        if self._offers:
            self.settle(None)
