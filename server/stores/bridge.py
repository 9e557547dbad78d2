"""The asyncio sidecar: run asyncio-only clients (asyncpg; redis.asyncio in tests) from trio.

Rules:
- One private asyncio event loop per process, in a daemon thread, shared by every store.
  Stores take it with `AsyncioBridge.acquire()` and give it back with `release()`; the loop
  starts on the first acquire and stops (tasks cancelled, async generators closed, thread
  joined, loop closed) on the last release.
- `await bridge.run(factory)` calls `factory()` *on the asyncio thread* (so the coroutine and
  everything it creates belong to that loop), runs it as an asyncio task, and parks the trio
  task until the asyncio task settles. The wake-up is one `TrioToken.run_sync_soon` call that
  reschedules the parked trio task directly: no trio worker thread, no trio.Event.
- Crossings are coalesced both ways: calls submitted while the asyncio loop has not yet
  picked up earlier ones share one `call_soon_threadsafe` wake-up, and results finished in
  one asyncio iteration share one `run_sync_soon` wake-up per trio run. Under concurrency
  that saves a syscall and a GIL hand-off per call; order is kept (FIFO queues).
- Cancellation is forwarded: when trio cancels the caller, the asyncio task is cancelled and
  the caller keeps waiting until that task has really finished (so a connection is back in
  its pool, or a query cancel request was sent, before the trio side unwinds). Then trio's
  Cancelled is raised, whatever the asyncio task returned.
- Exceptions raised by the coroutine propagate to the trio caller unchanged.
- This module and the adapters next to it are the only places in Podium that touch asyncio.

Why not `asyncio.run_coroutine_threadsafe`: its concurrent Future reports "cancelled" the
instant `cancel()` is called, before the asyncio task has unwound, so it cannot tell the
caller when cancellation has settled. Scheduling the task ourselves with
`call_soon_threadsafe` gives that signal and skips the concurrent Future's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import outcome
import trio

from core.errors import InternalError

T = TypeVar("T")
_Reschedule = tuple[trio.lowlevel.Task, "outcome.Outcome[Any]"]

# How long stop() lets the asyncio tasks that were still running unwind before closing.
_STOP_TIMEOUT_S = 5.0


class AsyncioBridge:
    """A private asyncio loop in a daemon thread, awaited from trio.

    Use the process-wide instance: `bridge = AsyncioBridge.acquire()` ... `bridge.release()`.
    """

    _shared: ClassVar[AsyncioBridge | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._users = 0
        self._pid = os.getpid()
        # trio -> asyncio: callbacks to run on the loop, and whether a drain is scheduled.
        self._submissions: deque[Callable[[], None]] = deque()
        self._submit_scheduled = False
        # asyncio -> trio: one inbox per trio run (token) with results to hand back.
        self._inboxes: weakref.WeakKeyDictionary[trio.lowlevel.TrioToken, _TrioInbox] = (
            weakref.WeakKeyDictionary()
        )
        # Calls submitted to the asyncio side (bench and tests read it).
        self.calls = 0

    # -- lifecycle ----------------------------------------------------------------------

    @classmethod
    def acquire(cls) -> AsyncioBridge:
        """Return the process's bridge, starting its loop thread if this is the first user."""
        with cls._shared_lock:
            bridge = cls._shared
            if bridge is None or bridge._pid != os.getpid():
                # A forked child must not reuse the parent's (absent) thread.
                bridge = cls._shared = AsyncioBridge()
            bridge._users += 1
            if bridge._loop is None:
                bridge._start()
            return bridge

    def release(self) -> None:
        """Give the bridge back; the last user stops the loop and joins its thread."""
        with self._shared_lock:
            self._users = max(0, self._users - 1)
            if self._users == 0 and self._loop is not None:
                self._stop()

    @property
    def running(self) -> bool:
        return self._loop is not None

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        thread = threading.Thread(target=main, name="podium-asyncio-bridge", daemon=True)
        thread.start()
        started.wait()
        self._loop, self._thread = loop, thread

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        assert loop is not None
        assert thread is not None
        self._loop = self._thread = None

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=_STOP_TIMEOUT_S)
            await loop.shutdown_asyncgens()

        if thread is threading.current_thread():
            raise InternalError("AsyncioBridge.release: called from the bridge's own thread")
        drained = asyncio.run_coroutine_threadsafe(drain(), loop)
        try:
            drained.result(_STOP_TIMEOUT_S + 1)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_STOP_TIMEOUT_S)
            if not thread.is_alive():
                loop.close()

    # -- crossings ----------------------------------------------------------------------

    def _submit(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
        # trio thread. Append first, then test the flag: the drain clears the flag before
        # it empties the queue, so an item is never left behind (see _run_submissions).
        self._submissions.append(fn)
        if not self._submit_scheduled:
            self._submit_scheduled = True
            loop.call_soon_threadsafe(self._run_submissions)

    def _run_submissions(self) -> None:
        # asyncio thread.
        self._submit_scheduled = False
        queue = self._submissions
        while queue:
            queue.popleft()()

    def _inbox(self, token: trio.lowlevel.TrioToken) -> _TrioInbox:
        inbox = self._inboxes.get(token)
        if inbox is None:
            inbox = self._inboxes[token] = _TrioInbox(token)
        return inbox

    # -- calls --------------------------------------------------------------------------

    async def run(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run `factory()` on the asyncio loop and return its result to the trio caller.

        Args:
            factory: a zero-argument callable returning an awaitable; it is called on the
                asyncio thread (pass `lambda: pool.fetchval("SELECT 1")`, not the coroutine).

        Returns:
            Whatever the awaitable returns.

        Raises:
            trio.Cancelled: the caller was cancelled (after the asyncio task has settled).
            InternalError: the bridge is not running (acquire() it first).
            Exception: anything the awaitable raised, unchanged.
        """
        loop = self._loop
        if loop is None:
            raise InternalError("AsyncioBridge.run: the bridge is stopped; acquire() it first")
        self.calls += 1
        inbox = self._inbox(trio.lowlevel.current_trio_token())
        trio_task = trio.lowlevel.current_task()
        box: list[asyncio.Future[T]] = []
        cancel_requested: list[Callable[[], Any]] = []

        def on_done(task: asyncio.Future[T]) -> None:
            # asyncio thread: capture the outcome and hand it to the parked trio task.
            result: outcome.Outcome[Any]
            if cancel_requested:
                result = outcome.capture(cancel_requested[0])
            elif task.cancelled():
                # Cancelled from the asyncio side (bridge stopping), not by trio.
                result = outcome.Error(
                    InternalError("AsyncioBridge.run: the bridge stopped during the call")
                )
            else:
                exc = task.exception()
                result = outcome.Value(task.result()) if exc is None else outcome.Error(exc)
            inbox.put(trio_task, result)

        def start() -> None:
            # asyncio thread.
            try:
                awaitable = factory()
                task = asyncio.ensure_future(awaitable)
            except BaseException as exc:  # factory itself raised: report it like a result
                failed: asyncio.Future[T] = loop.create_future()
                failed.set_exception(exc)
                failed.add_done_callback(on_done)
                return
            box.append(task)
            task.add_done_callback(on_done)

        def cancel_on_loop() -> None:
            if box:
                box[0].cancel()

        def abort(raise_cancel: Callable[[], Any]) -> trio.lowlevel.Abort:
            # trio thread, on cancellation: forward it and keep waiting for the task to settle.
            cancel_requested.append(raise_cancel)
            # RuntimeError: the loop is closed, so the waiter has already been woken.
            with contextlib.suppress(RuntimeError):
                self._submit(loop, cancel_on_loop)  # FIFO: runs after start()
            return trio.lowlevel.Abort.FAILED

        self._submit(loop, start)
        value: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return value


class _TrioInbox:
    """Results for one trio run, handed over with one run_sync_soon per batch.

    The wake-up is deferred to the end of the asyncio loop's current iteration (a
    call_soon), so every result finished in that iteration travels together, and the
    asyncio thread is done with its work before it hands the GIL to the woken trio thread.
    """

    __slots__ = ("__weakref__", "deferred", "items", "scheduled", "token")

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token
        self.items: deque[_Reschedule] = deque()
        self.scheduled = False  # a flush is queued on the trio side
        self.deferred = False  # a wake-up is queued on the asyncio side

    def put(self, task: trio.lowlevel.Task, result: outcome.Outcome[Any]) -> None:
        # asyncio thread.
        self.items.append((task, result))
        if not self.deferred:
            self.deferred = True
            asyncio.get_running_loop().call_soon(self.wake)

    def wake(self) -> None:
        # asyncio thread. Same append-then-test protocol as AsyncioBridge._submit.
        self.deferred = False
        if not self.scheduled:
            self.scheduled = True
            # RunFinishedError: the trio run is gone, nobody is waiting.
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self.flush)

    def flush(self) -> None:
        # trio thread.
        self.scheduled = False
        items = self.items
        while items:
            task, result = items.popleft()
            trio.lowlevel.reschedule(task, result)
