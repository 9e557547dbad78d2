"""A thread that owns one SQLite connection, with group commit; and the batch rules.

SqliteStore uses it for its reader and its checkpointer (writes run on the trio thread,
server/stores/sqlite_inline.py, with this module's `_run_batch` rules).

Rules:
- Every statement of this connection runs on this thread; the trio loop never touches
  it. A job is a plain function `fn(conn) -> result`, re-runnable: it reads and writes
  only through `conn` (a batch may run it again, see below). A trio caller parks its own task
  (trio.lowlevel) and the thread reschedules it through the loop's TrioToken, so no trio
  worker thread is held per call.
- Group commit: jobs that arrive while a transaction is in flight queue up, and the
  thread runs all of them in the next single transaction (BEGIN IMMEDIATE ... COMMIT),
  with no statement of its own between jobs. A job that raises without having changed a
  row (the usual failure: a version conflict found before any write) just gets its
  exception. One that raises after changing rows (`total_changes` moved) poisons the
  transaction: it is rolled back and the batch runs again without that job, which keeps
  its exception; every other job's result comes from the run that commits. One WAL commit
  (no fsync at synchronous=NORMAL) serves the batch.
- Results are handed out only after COMMIT succeeded; if COMMIT (or the transaction)
  fails, every job of the batch gets the error (nothing of the batch is visible). The
  hand-off wakes each trio run once per batch, and not at all while an earlier wake-up
  of that run is still pending (its delivery takes the later results along).
- A cancelled caller stops waiting; its job still runs (it may already be applied).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import trio

from core.errors import InternalError, Unavailable

T = TypeVar("T")

# Upper bound on jobs per transaction, so one batch cannot grow latency without limit.
MAX_BATCH = 512


class _Mailbox:
    """Finished jobs on their way back to one trio run: one wake-up per pending delivery.

    `post` runs on the worker thread, `deliver` on the trio thread (via run_sync_soon).
    """

    __slots__ = ("_done", "_lock", "_scheduled", "_token")

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._done: deque[_Job[Any]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def post(self, jobs: list[_Job[Any]]) -> None:
        self._done.extend(jobs)
        with self._lock:
            if self._scheduled:
                return  # the pending delivery drains these too
            self._scheduled = True
        try:
            self._token.run_sync_soon(self.deliver)
        except trio.RunFinishedError:
            # The caller's trio run is gone: nobody waits for these results.
            self._done.clear()
            with self._lock:
                self._scheduled = False

    def deliver(self) -> None:
        # Clear the flag first: a job posted after this point schedules its own delivery.
        with self._lock:
            self._scheduled = False
        done = self._done
        while done:
            waiter = done.popleft().waiter
            waiter.pending -= 1
            if waiter.pending == 0 and not waiter.abandoned:
                trio.lowlevel.reschedule(waiter.task)


class _Waiter:
    """The trio task waiting for `pending` jobs (one per `run`, several per `run_many`)."""

    __slots__ = ("abandoned", "pending", "task")

    def __init__(self, pending: int) -> None:
        self.task = trio.lowlevel.current_task()
        self.pending = pending
        self.abandoned = False  # the caller was cancelled: do not reschedule it

    def abort(self, _: object) -> trio.lowlevel.Abort:
        self.abandoned = True
        return trio.lowlevel.Abort.SUCCEEDED


class _Job(Generic[T]):
    __slots__ = ("error", "failed_batch", "fn", "mailbox", "result", "waiter", "write")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], T],
        write: bool,
        mailbox: _Mailbox,
        waiter: _Waiter,
    ) -> None:
        self.fn = fn
        self.write = write
        self.mailbox = mailbox
        self.waiter = waiter
        self.result: T | None = None
        self.error: BaseException | None = None
        self.failed_batch = False  # the error is the whole transaction's, not this job's


class JobRunner:
    """`run` and `run_many` for a runner of jobs (SqliteWorker: its own thread;
    sqlite_inline.InlineWriter: the trio thread). A subclass says whether it is open
    (`_check_open`, raising InternalError if not) and queues the jobs (`_submit`); the
    caller parks until the last of its jobs is done."""

    def _check_open(self) -> None:
        raise NotImplementedError

    def _submit(
        self, fns: list[Callable[[sqlite3.Connection], Any]], write: bool, waiter: _Waiter
    ) -> list[_Job[Any]]:
        raise NotImplementedError

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """Run `fn(conn)` in the runner's next group transaction (`write`) or batch.

        Raises:
            Whatever `fn` raised; sqlite3 errors become core.errors.Unavailable.
        """
        self._check_open()
        waiter = _Waiter(1)
        [job] = self._submit([fn], write, waiter)
        await trio.lowlevel.wait_task_rescheduled(waiter.abort)
        result: T = _result_of(job)
        return result

    async def run_many(
        self, fns: list[Callable[[sqlite3.Connection], T]], *, write: bool = True
    ) -> list[T | Exception]:
        """Run each of `fns` as its own job, queued together (normally one transaction).

        Each job succeeds or fails on its own: a job's exception is returned in its slot
        (sqlite3 errors as core.errors.Unavailable). One wake-up when all are done.

        Raises:
            core.errors.Unavailable: the transaction itself failed (nothing known applied).
        """
        self._check_open()
        if not fns:
            return []
        waiter = _Waiter(len(fns))
        jobs = self._submit(fns, write, waiter)
        await trio.lowlevel.wait_task_rescheduled(waiter.abort)
        results: list[T | Exception] = _results_of(jobs)
        return results


class SqliteWorker(JobRunner):
    """Owns the connection made by `connect` and runs jobs on its own thread."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._started = False
        self._mailboxes: dict[trio.lowlevel.TrioToken, _Mailbox] = {}
        self.batches = 0  # transactions committed (tests and benchmarks read it)
        self.jobs_done = 0
        self.replays = 0  # transactions rolled back to drop a job that failed mid-write

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
                job.failed_batch = True
                job.mailbox.post([job])

    def _mailbox(self) -> _Mailbox:
        token = trio.lowlevel.current_trio_token()
        mailbox = self._mailboxes.get(token)
        if mailbox is None:
            mailbox = self._mailboxes[token] = _Mailbox(token)
        return mailbox

    def _check_open(self) -> None:
        if not self._started:
            raise InternalError("the SQLite store is not open: call `await store.open()` first")

    def _submit(
        self, fns: list[Callable[[sqlite3.Connection], Any]], write: bool, waiter: _Waiter
    ) -> list[_Job[Any]]:
        mailbox = self._mailbox()
        jobs: list[_Job[Any]] = [_Job(fn, write, mailbox, waiter) for fn in fns]
        put = self._jobs.put
        for job in jobs:
            put(job)
        return jobs

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
            job.failed_batch = True
            job.mailbox.post([job])

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
        _run_batch(conn, batch, self)
        _post_all(batch)


def _result_of(job: _Job[T]) -> T:
    """A finished job's result, or its error raised."""
    if job.error is not None:
        raise job.error
    return job.result  # type: ignore[return-value]


def _results_of(jobs: list[_Job[T]]) -> list[T | Exception]:
    """Finished jobs' results, each job's own error in its slot; a failure of the whole
    batch (or a BaseException) is raised."""
    results: list[T | Exception] = []
    for job in jobs:
        error = job.error
        if error is None:
            results.append(job.result)  # type: ignore[arg-type]
        elif job.failed_batch or not isinstance(error, Exception):
            raise error
        else:
            results.append(error)
    return results


def _post_all(batch: list[_Job[Any]]) -> None:
    # One post per trio run for the whole batch (not one per job).
    first = batch[0].mailbox
    if all(job.mailbox is first for job in batch):
        first.post(batch)
        return
    by_box: dict[_Mailbox, list[_Job[Any]]] = {}
    for job in batch:
        by_box.setdefault(job.mailbox, []).append(job)
    for mailbox, jobs in by_box.items():
        mailbox.post(jobs)


def _run_job(conn: sqlite3.Connection, job: _Job[Any]) -> bool:
    """Run one job, keeping its result or error; True if it succeeded."""
    try:
        job.result = job.fn(conn)
    except Exception as exc:
        job.result = None
        if isinstance(exc, sqlite3.Error):
            failure = Unavailable(f"SQLite store error: {exc}")
            failure.__cause__ = exc
            job.error = failure
        else:  # PodiumError (e.g. VersionConflict) or a bug: passed through unchanged
            job.error = exc
        return False
    job.error = None
    return True


def _run_batch(conn: sqlite3.Connection, batch: list[_Job[Any]], stats: Any) -> None:
    """Run `batch` (one transaction if any job writes); every job gets its outcome.

    `stats` counts `batches`, `jobs_done` and `replays`.
    """
    try:
        if any(job.write for job in batch):
            _run_transaction(conn, batch, stats)
        else:
            for job in batch:
                _run_job(conn, job)
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        failure = Unavailable(f"SQLite transaction failed: {exc}")
        failure.__cause__ = exc
        for job in batch:
            job.result = None
            job.error = failure
            job.failed_batch = True
    stats.jobs_done += len(batch)


def _run_transaction(conn: sqlite3.Connection, batch: list[_Job[Any]], stats: Any) -> None:
    dropped: set[int] = set()  # jobs that failed after writing: they keep their error
    while True:
        conn.execute("BEGIN IMMEDIATE")
        poisoned = False
        for i, job in enumerate(batch):
            if i in dropped:
                continue
            before = conn.total_changes
            if _run_job(conn, job):
                continue
            if not conn.in_transaction:
                # SQLite rolled the whole transaction back itself (I/O error, full
                # disk): the batch fails as one, before any later job runs.
                raise sqlite3.OperationalError(
                    f"the transaction was rolled back by SQLite: {job.error}"
                )
            if conn.total_changes == before:
                continue  # failed before changing anything: nothing to undo
            dropped.add(i)
            poisoned = True
            break
        if not poisoned:
            conn.execute("COMMIT")
            stats.batches += 1
            return
        conn.execute("ROLLBACK")
        stats.replays += 1
