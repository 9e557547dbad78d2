"""The one thread that owns a SQLite connection, with group commit (used by SqliteStore).

Rules:
- Every statement runs on this thread; the trio loop never touches sqlite3. A job is a
  plain function `fn(conn) -> result`; trio callers wait on a trio.Event that the thread
  sets through the loop's TrioToken, so no trio worker thread is held per call.
- Group commit: jobs that arrive while a transaction is in flight queue up, and the
  thread runs all of them in the next single transaction (BEGIN IMMEDIATE ... COMMIT),
  each write job inside its own SAVEPOINT: a job that raises is rolled back alone and
  gets its exception; the others commit. One fsync-free WAL commit serves the batch.
- Results are handed out only after COMMIT succeeded, the whole batch in one hand-off
  to each trio run (one loop wake-up, not one per job); if COMMIT fails, every job of the
  batch gets the error (nothing of the batch is visible).
- A cancelled caller stops waiting; its job still runs (it may already be applied).
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import trio

from core.errors import InternalError, Unavailable

T = TypeVar("T")

# Upper bound on jobs per transaction, so one batch cannot grow latency without limit.
MAX_BATCH = 512


class _Job(Generic[T]):
    __slots__ = ("done", "error", "fn", "result", "token", "write")

    def __init__(self, fn: Callable[[sqlite3.Connection], T], write: bool) -> None:
        self.fn = fn
        self.write = write
        self.result: T | None = None
        self.error: BaseException | None = None
        self.token = trio.lowlevel.current_trio_token()
        self.done = trio.Event()

    def finish(self) -> None:
        # If the caller's trio run is gone, nobody waits for this result.
        with contextlib.suppress(trio.RunFinishedError):
            self.token.run_sync_soon(self.done.set)


class SqliteWorker:
    """Owns the connection made by `connect` and runs jobs on its own thread."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._started = False
        self.batches = 0  # transactions run (tests and benchmarks read it)
        self.jobs_done = 0

    def start(self) -> None:
        self._thread.start()
        self._started = True

    async def stop(self) -> None:
        """Finish queued jobs, close the connection, join the thread."""
        if not self._started:
            return
        # Refuse new jobs first: run() checks the flag and queues without an await between.
        self._started = False
        self._jobs.put(None)
        await trio.to_thread.run_sync(self._thread.join)
        # Nothing can be queued behind the stop marker now, but be certain no caller hangs.
        closed = Unavailable("the SQLite store was closed while this call was queued")
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.error = closed
                job.finish()

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """Run `fn(conn)` on the worker thread (in the next group transaction if `write`).

        Raises:
            Whatever `fn` raised; sqlite3 errors become core.errors.Unavailable.
        """
        if not self._started:
            raise InternalError("the SQLite store is not open: call `await store.open()` first")
        job: _Job[T] = _Job(fn, write)
        self._jobs.put(job)
        await job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    # ------------------------------------------------------------------ thread side

    def _main(self) -> None:
        try:
            conn = self._connect()
        except Exception as exc:
            self._refuse_all(exc)
            return
        try:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                if first is None:
                    break
                batch: list[_Job[Any]] = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        nxt = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    batch.append(nxt)
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _refuse_all(self, exc: Exception) -> None:
        # The database cannot be opened: answer every job with the reason until stop().
        failure = Unavailable(f"cannot open the SQLite database: {exc}")
        failure.__cause__ = exc
        while (job := self._jobs.get()) is not None:
            job.error = failure
            job.finish()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
        writes = any(job.write for job in batch)
        try:
            if writes:
                conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                _run_job(conn, job)
            if writes:
                conn.execute("COMMIT")
                self.batches += 1
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = Unavailable(f"SQLite transaction failed: {exc}")
            failure.__cause__ = exc
            for job in batch:
                job.error = failure
        self.jobs_done += len(batch)
        _finish_all(batch)


def _finish_all(batch: list[_Job[Any]]) -> None:
    # One hand-off per trio run for the whole batch (not one per job): each
    # run_sync_soon writes the loop's wake-up socket, a syscall and a GIL hand-off.
    by_token: dict[trio.lowlevel.TrioToken, list[_Job[Any]]] = {}
    for job in batch:
        by_token.setdefault(job.token, []).append(job)
    for token, jobs in by_token.items():
        events = [job.done for job in jobs]
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(_set_all, events)


def _set_all(events: list[trio.Event]) -> None:
    for event in events:
        event.set()


def _run_job(conn: sqlite3.Connection, job: _Job[Any]) -> None:
    if job.write:
        conn.execute("SAVEPOINT job")
    try:
        job.result = job.fn(conn)
    except Exception as exc:
        if job.write:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
        if isinstance(exc, sqlite3.Error):
            failure = Unavailable(f"SQLite store error: {exc}")
            failure.__cause__ = exc
            job.error = failure
        else:  # PodiumError (e.g. VersionConflict) or a bug: passed through unchanged
            job.error = exc
    else:
        if job.write:
            conn.execute("RELEASE job")
