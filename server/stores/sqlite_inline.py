"""The SQLite write connection, driven from the trio thread itself, with group commit.

Rules:
- Writes run on the trio thread: no thread hand-off, no GIL ping-pong per job. A caller
  appends its job and parks (trio.lowlevel); one flusher (a system task of the trio run
  that opened the writer) wakes at most once per scheduler batch, so every job queued by
  the tasks of that batch runs in one transaction (BEGIN IMMEDIATE ... COMMIT), at most
  MAX_BATCH jobs each. Job rules are server/stores/sqlite_worker.py's (`_run_batch`): no
  savepoints; a job that fails after writing poisons the transaction, which is rolled
  back and replayed without it; results only after COMMIT; a failed transaction fails
  every job of the batch. The flusher reschedules the callers directly.
- A job must be short and never wait (a read/write of a few rows): it runs on the loop.
  Long reads (searches) belong on the reader thread (SqliteWorker).
- The connection never checkpoints by itself (`wal_autocheckpoint = 0`): the fsyncs of a
  checkpoint would stall the loop. Every CHECKPOINT_EVERY committed jobs it asks
  `checkpoint` (a PASSIVE checkpoint on another thread's connection; returns the WAL's
  length in pages) while writes go on. SQLite starts the WAL file over only at a
  transaction that begins after a checkpoint copied every frame, which commits landing
  during the checkpoint prevent. So when the WAL is longer than WAL_LIMIT_PAGES, or the
  checkpointer falls CHECKPOINT_EVERY jobs behind, the next transaction waits for a
  checkpoint that runs with no commit landing: the loop keeps running, only writers
  wait, and the next commit starts the WAL file over. So the WAL file stays bounded.
- Open the connection and migrate off the loop (trio.to_thread); opening and use belong
  to one trio run: a call from another trio run is an InternalError.
- A cancelled caller stops waiting; its job still runs (it may already be applied).
- Durability as before: COMMIT at synchronous=NORMAL writes the WAL (no fsync) before a
  caller gets its result; a process crash loses no returned commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import trio

from core.errors import InternalError, Unavailable
from server.stores.sqlite_worker import (
    MAX_BATCH,
    JobRunner,
    _Job,
    _run_batch,
    _run_job,
    _Waiter,
)

T = TypeVar("T")

# Committed jobs between two checkpoint requests (a job writes a few pages at most).
CHECKPOINT_EVERY = 2000
# A WAL this large after a checkpoint means it is not starting over: pause writes for one.
WAL_LIMIT_PAGES = 8000

_NOT_OPEN = "the SQLite store is not open: call `await store.open()` first"


class InlineWriter(JobRunner):
    """Owns the write connection made by `connect`; runs jobs on the trio thread."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        name: str,
        checkpoint: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self._connect = connect
        self._name = name
        self._checkpoint = checkpoint
        self._conn: sqlite3.Connection | None = None
        self._open = False  # accepting jobs
        self._token: trio.lowlevel.TrioToken | None = None
        self._queue: list[_Job[Any]] = []
        self._flusher: trio.lowlevel.Task | None = None
        self._flusher_parked = False
        self._flusher_done = trio.Event()
        self._stopping = False
        self._held = 0
        self._since_checkpoint = 0  # jobs committed since the last checkpoint request
        self._checkpointing = False
        self._checkpoint_done: trio.Event | None = None
        self._must_wait_checkpoint = False
        self.batches = 0  # transactions committed (tests and benchmarks read it)
        self.jobs_done = 0
        self.replays = 0  # transactions rolled back to drop a job that failed mid-write
        self.checkpoints = 0  # checkpoints finished
        self.write_pauses = 0  # transactions that waited for a checkpoint

    async def start(self, prepare: Callable[[sqlite3.Connection], object] | None = None) -> None:
        """Open the connection (and run `prepare(conn)`, e.g. migrations) off the loop.

        Raises:
            core.errors.Unavailable: the database cannot be opened; `prepare`'s errors
            (sqlite3 errors as Unavailable).
        """
        try:
            conn = await trio.to_thread.run_sync(self._connect)
        except Exception as exc:
            failure = Unavailable(f"cannot open the SQLite database: {exc}")
            failure.__cause__ = exc
            raise failure from exc
        try:
            if prepare is not None:
                job: _Job[object] = _Job(prepare, False, None, None)  # type: ignore[arg-type]
                await trio.to_thread.run_sync(_run_job, conn, job)
                if job.error is not None:
                    raise job.error
        except BaseException:
            await trio.to_thread.run_sync(conn.close)
            raise
        self._conn = conn
        self._open = True
        self._token = trio.lowlevel.current_trio_token()
        self._flusher = trio.lowlevel.spawn_system_task(self._flush_loop, name=self._name)

    async def stop(self) -> None:
        """Finish queued jobs, then close the connection (off the loop)."""
        conn = self._conn
        if conn is None or not self._open:
            return
        self._open = False  # refuse new jobs (run() checks it without an await between)
        self._stopping = True
        self._held = 0
        self._wake()
        if trio.lowlevel.current_trio_token() is self._token:
            await self._flusher_done.wait()
        # The last connection to close checkpoints the WAL (fsyncs): not on the loop.
        self._conn = None
        await trio.to_thread.run_sync(conn.close)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Queue jobs without running them until the block ends (tests use it)."""
        self._held += 1
        try:
            yield
        finally:
            self._held = max(0, self._held - 1)  # stop() may have cleared it
            if self._queue:
                self._wake()

    def _submit(
        self, fns: list[Callable[[sqlite3.Connection], Any]], write: bool, waiter: _Waiter
    ) -> list[_Job[Any]]:
        jobs: list[_Job[Any]] = [_Job(fn, write, None, waiter) for fn in fns]  # type: ignore[arg-type]
        self._queue.extend(jobs)
        self._wake()
        return jobs

    # ------------------------------------------------------------------ flusher

    def _check_open(self) -> None:
        if not self._open:
            raise InternalError(_NOT_OPEN)
        if trio.lowlevel.current_trio_token() is not self._token:
            raise InternalError(
                "the SQLite store was opened in another trio run: open, use and close it "
                "in one trio.run"
            )

    def _wake(self) -> None:
        if self._flusher_parked:
            self._flusher_parked = False
            trio.lowlevel.reschedule(self._flusher)  # type: ignore[arg-type]

    async def _park(self) -> None:
        self._flusher_parked = True
        try:
            await trio.lowlevel.wait_task_rescheduled(_abort_ok)
        finally:
            self._flusher_parked = False

    async def _flush_loop(self) -> None:
        try:
            while True:
                if not self._queue or self._held:
                    if self._stopping and not self._queue:
                        return
                    await self._park()  # woken by the first job of a scheduler batch
                    continue
                if self._must_wait_checkpoint and not self._stopping:
                    await self._wait_for_checkpoint()
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                self._flush(batch)
                if self._queue:
                    # More than MAX_BATCH queued: let the callers run first.
                    await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            # The trio run is ending: nobody can wait for these any more.
            self._queue.clear()
            raise
        finally:
            self._flusher_done.set()

    def _flush(self, batch: list[_Job[Any]]) -> None:
        conn = self._conn
        assert conn is not None  # stop() closes it only after the flusher ended
        _run_batch(conn, batch, self)
        for job in batch:
            waiter = job.waiter
            waiter.pending -= 1
            if waiter.pending == 0 and not waiter.abandoned:
                trio.lowlevel.reschedule(waiter.task)
        writes = sum(1 for job in batch if job.write)
        if writes:
            self._since_checkpoint += writes
            self._maybe_checkpoint()

    # ------------------------------------------------------------------ checkpoints

    def _maybe_checkpoint(self) -> None:
        if self._checkpoint is None or self._stopping:
            return
        if self._checkpointing:
            if self._since_checkpoint >= CHECKPOINT_EVERY:
                self._must_wait_checkpoint = True  # the checkpointer is behind
            return
        if self._since_checkpoint >= CHECKPOINT_EVERY or self._must_wait_checkpoint:
            self._since_checkpoint = 0
            self._checkpointing = True
            self._checkpoint_done = trio.Event()
            trio.lowlevel.spawn_system_task(self._run_checkpoint, name=f"{self._name}:ckpt")

    async def _run_checkpoint(self) -> None:
        assert self._checkpoint is not None
        assert self._checkpoint_done is not None
        done = self._checkpoint_done
        try:
            pages = await self._checkpoint()
        except Exception:  # a failed checkpoint loses nothing: the next one retries
            pages = WAL_LIMIT_PAGES + 1
        finally:
            self._checkpointing = False
            self.checkpoints += 1
            done.set()
        self._must_wait_checkpoint = pages > WAL_LIMIT_PAGES

    async def _wait_for_checkpoint(self) -> None:
        # Only writers wait; the loop runs on. A checkpoint already running started while
        # commits went on; the one started here sees none land, so it can finish and the
        # next transaction starts the WAL file over.
        self.write_pauses += 1
        while self._checkpointing:
            assert self._checkpoint_done is not None
            await self._checkpoint_done.wait()
        self._must_wait_checkpoint = True
        self._maybe_checkpoint()
        assert self._checkpoint_done is not None
        await self._checkpoint_done.wait()
        self._must_wait_checkpoint = False


def _abort_ok(_: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.SUCCEEDED
