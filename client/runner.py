"""TaskRunner: poll Podium for tasks, run them with workers, report the results (trio).

Rules:
- One poll loop per worker type. Each holds `poll_count` slots (the runner's
  `concurrency` when the worker does not say); a poll asks for as many tasks as there are
  free slots (`count`), long-polling on the server for up to `poll_timeout_ms` (at most
  5000, the server's limit). Every task handed out holds one slot until its result is
  reported.
- A task runs on the trio loop when `execute` is a coroutine function, else on a worker
  thread (`trio.to_thread`), so a blocking function never stalls polling. The outcome
  becomes a TaskResult by `client.worker`'s rules, and is reported with
  `POST /tasks/update-v2`; the task that call returns (the next one of the same type) is
  run at once in the same slot, without polling.
- Every loop and task chain shares one client (the caller's, or one created per run):
  its connection pool hands out a kept-alive connection in O(1), whatever its size. Only
  a polled task starts a trio task (its chain); the tasks update-v2 hands back run in
  that chain, one after another.
- Transport errors (`client.http.TransportError`: refused, reset, timeout) and
  retryable answers (5xx, 429) are retried with capped exponential backoff: polls
  forever (they are harmless), a result up to `update_attempts` times, after which it is
  logged and dropped (the server's response timeout re-delivers the task). A result the
  server rejects (4xx) is logged and not retried. If update-v2 is missing on the server
  (404/405 and the plain update succeeds), the runner uses `POST /tasks` from then on
  and polls after each update, as Conductor's SDK does.
- Graceful shutdown (`stop()`, or SIGINT/SIGTERM under `run_sync()`): no new polls start;
  a poll already waiting on the server is not cut off (its answer may hold tasks that are
  already ours), so it finishes within `poll_timeout_ms` and its tasks are run; every
  task in flight finishes and is reported with the plain update (which hands out no new
  task). Then `run()` returns. Cancelling `run()` instead is a hard stop: tasks in flight
  are abandoned and come back after their response timeout.
"""

from __future__ import annotations

import inspect
import logging
import random
import signal
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import trio

from client.api import ConductorApiError, ConductorClient
from client.http import TransportError
from client.worker import (
    Worker,
    result_from_error,
    result_from_value,
    worker_domain,
    worker_poll_count,
)
from core.enums import TaskResultStatus
from core.models import Task, TaskResult

__all__ = ["Backoff", "RunnerStats", "TaskRunner"]

log = logging.getLogger("podium.client")

#: The longest server-side long poll Conductor (and Podium) accept.
MAX_POLL_TIMEOUT_MS = 5000


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff: `initial_s * factor**attempt`, at most `max_s`.

    Attributes:
        initial_s: the first delay.
        factor: growth per consecutive failure.
        max_s: the cap.
        jitter: a fraction of the delay added at random (0 gives exact delays), so many
            workers that failed together do not retry together.
    """

    initial_s: float = 0.1
    factor: float = 2.0
    max_s: float = 10.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.factor < 1 or self.max_s < self.initial_s:
            raise ValueError(
                "Backoff needs initial_s > 0, factor >= 1 and max_s >= initial_s, got "
                f"initial_s={self.initial_s}, factor={self.factor}, max_s={self.max_s}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff.jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th consecutive failure (0 = the first).

        Args:
            attempt: how many failures came before this one.

        Returns:
            The delay, never more than `max_s * (1 + jitter)`.
        """
        # Cap the exponent first: factor**attempt overflows a float long before attempt
        # reaches the values a runner that has been down for a day would count.
        base = self.initial_s * self.factor ** min(attempt, 64)
        base = min(base, self.max_s)
        return base + base * self.jitter * random.random()


@dataclass(slots=True)
class RunnerStats:
    """Counters a TaskRunner keeps (for logs, tests and dashboards)."""

    polls: int = 0
    poll_errors: int = 0
    tasks_received: int = 0
    completed: int = 0
    failed: int = 0
    in_progress: int = 0
    updates_retried: int = 0
    updates_dropped: int = 0
    per_type: dict[str, int] = field(default_factory=dict)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, ConductorApiError) and exc.retryable


class TaskRunner:
    """Runs workers against a Podium server until stopped (a runner runs once).

    Args:
        workers: one worker per task type (a type served twice is a ValueError).
        server_url: the server's root URL or `/api` prefix.
        concurrency: tasks of one type run at once, for workers without `poll_count`.
        worker_id: recorded by the server on each task; the host name by default.
        poll_timeout_ms: the server-side long-poll wait (1..5000).
        backoff: delays between retries of failed polls and updates.
        update_attempts: tries per result before it is dropped (>= 1).
        client: an API client to use (left open); one is created (and closed) otherwise.
    """

    def __init__(
        self,
        workers: Iterable[Worker],
        server_url: str,
        *,
        concurrency: int = 4,
        worker_id: str | None = None,
        poll_timeout_ms: int = MAX_POLL_TIMEOUT_MS,
        backoff: Backoff | None = None,
        update_attempts: int = 8,
        client: ConductorClient | None = None,
    ) -> None:
        self.workers = list(workers)
        if not self.workers:
            raise ValueError("TaskRunner needs at least one worker")
        seen: set[tuple[str, str | None]] = set()
        for w in self.workers:
            key = (w.task_definition_name, worker_domain(w))
            if key in seen:
                raise ValueError(
                    f"two workers serve task type {key[0]!r}"
                    + (f" in domain {key[1]!r}" if key[1] else "")
                    + "; give each type one worker (raise its poll_count for more parallelism)"
                )
            seen.add(key)
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if not 0 <= poll_timeout_ms <= MAX_POLL_TIMEOUT_MS:
            raise ValueError(
                f"poll_timeout_ms must be between 0 and {MAX_POLL_TIMEOUT_MS} "
                f"(the server's long-poll limit), got {poll_timeout_ms}"
            )
        if update_attempts < 1:
            raise ValueError(f"update_attempts must be >= 1, got {update_attempts}")
        self.server_url = server_url
        self.concurrency = concurrency
        self.worker_id = worker_id or socket.gethostname()
        self.poll_timeout_ms = poll_timeout_ms
        self.backoff = backoff or Backoff()
        self.update_attempts = update_attempts
        self.stats = RunnerStats()
        self._client = client
        self._capacity = {id(w): worker_poll_count(w, concurrency) for w in self.workers}
        self._is_async = {id(w): inspect.iscoroutinefunction(w.execute) for w in self.workers}
        self._sync_capacity = sum(
            self._capacity[id(w)] for w in self.workers if not self._is_async[id(w)]
        )
        self._stopping = False
        self._use_v2 = True
        # Scopes of loops that are waiting for a free slot or sleeping between polls:
        # stop() cancels them. A loop inside a poll request is never in this set.
        self._idle_scopes: set[trio.CancelScope] = set()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once `stop()` has been called."""
        return self._stopping

    def stop(self) -> None:
        """Begin a graceful shutdown (see the module rules); `run()` returns when done.

        Call it from the trio thread running `run()` (from another thread use
        `trio.from_thread.run_sync(runner.stop, trio_token=...)`).
        """
        self._stopping = True
        for scope in list(self._idle_scopes):
            scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll and run tasks until `stop()` has drained everything.

        Args:
            task_status: for `nursery.start(runner.run)`; started once the loops are up.
        """
        # Enough connections for every slot and every poll loop: no request waits for one.
        connections = sum(self._capacity.values()) + len(self.workers)
        client = self._client or ConductorClient(self.server_url, max_connections=connections)
        try:
            limiter = trio.CapacityLimiter(max(1, self._sync_capacity))
            async with trio.open_nursery() as nursery:
                for w in self.workers:
                    nursery.start_soon(self._serve_type, client, w, limiter)
                task_status.started()
        finally:
            if self._client is None:
                with trio.CancelScope(shield=True):
                    await client.aclose()

    def run_sync(self) -> None:
        """`trio.run(self.run)`, with SIGINT and SIGTERM starting a graceful shutdown."""
        trio.run(self._run_with_signals)

    async def _run_with_signals(self) -> None:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        log.info("signal %s: finishing tasks in flight, then stopping", signum)
                        self.stop()

            nursery.start_soon(watch_signals)
            await self.run()
            nursery.cancel_scope.cancel()

    # -- one task type --------------------------------------------------------------------

    async def _idle(self, sleep_s: float | None, slots: trio.Semaphore | None) -> bool:
        """Sleep, then take one slot, unless stop() interrupts; False when stopping."""
        if self._stopping:
            return False
        acquired = False
        with trio.CancelScope() as scope:
            self._idle_scopes.add(scope)
            try:
                if sleep_s is not None:
                    await trio.sleep(sleep_s)
                if slots is not None:
                    await slots.acquire()
                    acquired = True
            finally:
                self._idle_scopes.discard(scope)
        # stop() may land after the wait succeeded but before this task resumed: then
        # nothing was cancelled, and the flag is what says not to poll again.
        if self._stopping:
            if acquired and slots is not None:
                slots.release()
            return False
        return True

    async def _serve_type(
        self, client: ConductorClient, w: Worker, limiter: trio.CapacityLimiter
    ) -> None:
        task_type, domain = w.task_definition_name, worker_domain(w)
        slots = trio.Semaphore(self._capacity[id(w)])
        failures = 0
        async with trio.open_nursery() as running:
            while await self._idle(None, slots):
                taken = 1
                while True:
                    try:
                        slots.acquire_nowait()
                    except trio.WouldBlock:
                        break
                    taken += 1
                try:
                    self.stats.polls += 1
                    tasks = await client.batch_poll(
                        task_type,
                        count=taken,
                        timeout_ms=self.poll_timeout_ms,
                        worker_id=self.worker_id,
                        domain=domain,
                    )
                except Exception as exc:
                    for _ in range(taken):
                        slots.release()
                    if not _retryable(exc):
                        # A 4xx on poll (say, a bad type name) will not heal by itself, but
                        # a runner must outlive it: back off straight to the cap.
                        failures = max(failures, 64)
                    self.stats.poll_errors += 1
                    delay = self.backoff.delay(failures)
                    failures += 1
                    log.warning("poll %s failed (%s); retrying in %.2fs", task_type, exc, delay)
                    if not await self._idle(delay, None):
                        break
                    continue
                failures = 0
                for _ in range(taken - len(tasks)):
                    slots.release()
                self.stats.tasks_received += len(tasks)
                for i, task in enumerate(tasks):
                    # A server that hands out more than asked is obeyed (those tasks are
                    # ours now), but the extras hold no slot, so the count stays true.
                    holds_slot = i < taken
                    running.start_soon(
                        self._run_chain, client, w, task, slots if holds_slot else None, limiter
                    )
                # A v1 server gives no next task on update: the loop polls right away.
            # Leaving the nursery waits for every chain in flight: that is the drain.

    async def _run_chain(
        self,
        client: ConductorClient,
        w: Worker,
        task: Task,
        slots: trio.Semaphore | None,
        limiter: trio.CapacityLimiter,
    ) -> None:
        try:
            current: Task | None = task
            while current is not None:
                result = await self._execute(w, current, limiter)
                current = await self._report(client, result)
                if current is not None:
                    self.stats.tasks_received += 1
        finally:
            if slots is not None:
                slots.release()

    async def _execute(self, w: Worker, task: Task, limiter: trio.CapacityLimiter) -> TaskResult:
        name = w.task_definition_name
        self.stats.per_type[name] = self.stats.per_type.get(name, 0) + 1
        try:
            if self._is_async[id(w)]:
                value = await w.execute(task)
            else:
                value = await trio.to_thread.run_sync(w.execute, task, limiter=limiter)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            log.info("task %s (%s) raised %r", task.task_id, name, exc)
            return result_from_error(task, exc, worker_id=self.worker_id)
        return result_from_value(task, value, worker_id=self.worker_id)

    def _count(self, result: TaskResult) -> None:
        if result.status is TaskResultStatus.COMPLETED:
            self.stats.completed += 1
        elif result.status is TaskResultStatus.IN_PROGRESS:
            self.stats.in_progress += 1
        else:
            self.stats.failed += 1

    async def _report(self, client: ConductorClient, result: TaskResult) -> Task | None:
        """Send a result (retrying); the next task when update-v2 hands one out."""
        self._count(result)
        for attempt in range(self.update_attempts):
            try:
                if self._use_v2 and not self._stopping:
                    return await self._update_v2(client, result)
                await client.update_task(result)
                return None
            except Exception as exc:
                if not _retryable(exc):
                    log.error(
                        "server rejected the result of task %s (%s); not retrying",
                        result.task_id,
                        exc,
                    )
                    self.stats.updates_dropped += 1
                    return None
                if attempt + 1 == self.update_attempts:
                    break
                delay = self.backoff.delay(attempt)
                self.stats.updates_retried += 1
                log.warning(
                    "update of task %s failed (%s); retrying in %.2fs", result.task_id, exc, delay
                )
                # Not interruptible by stop(): a graceful stop still delivers results.
                await trio.sleep(delay)
        log.critical(
            "dropping the result of task %s after %d attempts; the server will re-deliver "
            "the task after its response timeout",
            result.task_id,
            self.update_attempts,
        )
        self.stats.updates_dropped += 1
        return None

    async def _update_v2(self, client: ConductorClient, result: TaskResult) -> Task | None:
        try:
            return await client.update_task_v2(result)
        except ConductorApiError as exc:
            if exc.status not in (404, 405):
                raise
        # No update-v2 on this server (or an unknown task): try the plain update; if
        # that works, the server lacks v2 and the runner stops asking for it.
        await client.update_task(result)
        log.info("server has no /tasks/update-v2; using POST /tasks from now on")
        self._use_v2 = False
        return None
