"""In-process coordination: per-workflow locks and long-poll waiters.

Rules:
- A WorkflowLocks lock only serialises decides *inside one process*; the store's
  optimistic version check is what makes concurrent processes safe. Locks are created on
  demand and dropped when nobody holds or waits for them, so memory tracks concurrency,
  not the number of workflows.
- Several locks are always taken in sorted id order (batch poll), so two batches cannot
  deadlock.
- Waiters use a per-queue generation counter: a poller reads the generation *before* it
  pops, and waits only if no push happened since, so a wake-up between the pop and the
  wait is never lost. A delayed push wakes waiters when the delay ends (one timer task
  serves every delayed wake-up).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager

import trio


class _Hold:
    """`async with locks.hold(id)`: the workflow's trio.Lock, taken and given back (a
    plain class: cheaper to enter than a generator-based context manager)."""

    __slots__ = ("_lock", "_locks", "_workflow_id")

    def __init__(self, locks: WorkflowLocks, workflow_id: str) -> None:
        self._locks = locks
        self._workflow_id = workflow_id
        self._lock: trio.Lock | None = None

    async def __aenter__(self) -> None:
        table = self._locks._locks
        workflow_id = self._workflow_id
        lock, users = table.get(workflow_id, (None, 0))
        if lock is None:
            lock = trio.Lock()
        table[workflow_id] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._forget()
            raise
        self._lock = lock

    async def __aexit__(self, *exc: object) -> None:
        lock = self._lock
        assert lock is not None
        self._lock = None
        try:
            lock.release()
        finally:
            self._forget()

    def _forget(self) -> None:
        table = self._locks._locks
        lock, users = table[self._workflow_id]
        if users <= 1:
            del table[self._workflow_id]
        else:
            table[self._workflow_id] = (lock, users - 1)


class WorkflowLocks:
    """Per-workflow-id trio locks, created on demand."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[trio.Lock, int]] = {}

    def hold(self, workflow_id: str) -> _Hold:
        """`async with locks.hold(workflow_id):` serialises decides of that workflow."""
        return _Hold(self, workflow_id)

    @asynccontextmanager
    async def hold_many(self, workflow_ids: Iterable[str]) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for workflow_id in sorted(set(workflow_ids)):
                await stack.enter_async_context(self.hold(workflow_id))
            yield

    def held(self) -> int:
        """Number of workflows with a lock in use (tests check nothing leaks)."""
        return len(self._locks)


class QueueWaiters:
    """Wake long-polling workers when their queue gets a message."""

    def __init__(self) -> None:
        self._generation: dict[str, int] = {}
        self._waiting: dict[str, set[trio.Event]] = {}  # queue -> its waiting polls' events
        # (trio deadline, queue) for delayed pushes; served by run().
        self._delayed: list[tuple[float, str]] = []
        self._delayed_changed = trio.Event()

    def generation(self, queue: str) -> int:
        return self._generation.get(queue, 0)

    def notify(self, queue: str) -> None:
        """A message became visible in `queue` now."""
        self._generation[queue] = self._generation.get(queue, 0) + 1
        waiting = self._waiting.pop(queue, None)
        if waiting:
            for event in waiting:
                event.set()

    def notify_later(self, queue: str, delay_ms: int) -> None:
        """A message in `queue` becomes visible after `delay_ms`."""
        if delay_ms <= 0:
            self.notify(queue)
            return
        deadline = trio.current_time() + delay_ms / 1000
        if not self._delayed or deadline < self._delayed[0][0]:
            self._delayed_changed.set()
        heapq.heappush(self._delayed, (deadline, queue))

    async def wait(self, queue: str, since: int, timeout_s: float, event: trio.Event) -> bool:
        """Wait until `queue` gets a push after generation `since`, `event` is set (by
        the push, or by a direct hand-off: server/engine/takers.py), or `timeout_s` passes.

        Returns:
            True when woken, False on timeout.
        """
        if self._generation.get(queue, 0) != since or event.is_set():
            return True
        waiting = self._waiting.get(queue)
        if waiting is None:
            waiting = self._waiting[queue] = set()
        waiting.add(event)
        try:
            with trio.move_on_after(timeout_s):
                await event.wait()
                return True
            return False
        finally:
            waiting.discard(event)
            if not waiting and self._waiting.get(queue) is waiting:
                del self._waiting[queue]

    async def run(self) -> None:
        """Fire delayed wake-ups when they are due (runs in the engine's nursery)."""
        while True:
            now = trio.current_time()
            while self._delayed and self._delayed[0][0] <= now:
                _, queue = heapq.heappop(self._delayed)
                self.notify(queue)
            deadline = self._delayed[0][0] if self._delayed else math.inf
            self._delayed_changed = trio.Event()
            with trio.move_on_at(deadline):
                await self._delayed_changed.wait()


class TaskOwners:
    """Task id -> workflow id for tasks this process queued (a bounded cache).

    A task id belongs to one workflow forever, so an entry never goes stale; a removed
    workflow just makes the following load come back empty, which the poll handles.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self._owners: dict[str, str] = {}
        self._limit = limit

    def remember(self, task_id: str, workflow_id: str) -> None:
        if len(self._owners) >= self._limit:
            # Drop the older half (dicts keep insertion order).
            for key in list(self._owners)[: self._limit // 2]:
                del self._owners[key]
        self._owners[task_id] = workflow_id

    def get(self, task_id: str) -> str | None:
        return self._owners.get(task_id)
