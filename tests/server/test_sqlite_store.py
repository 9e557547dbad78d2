"""SQLite-specific behaviour beyond the contract: group commit, pragmas, migrations, URLs.

Rules: no sleeps and no timing assertions. To make batching deterministic a test holds
the writer (`InlineWriter.hold`), queues jobs from trio, then releases it.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import pytest
import trio
import trio.testing

from core.errors import BadRequest, InternalError, Unavailable, VersionConflict
from core.store import Commit, QueueOp, WorkflowRecord
from server.stores import sqlite_inline, sqlite_schema
from server.stores.sqlite import SqliteStore, database_path
from server.stores.sqlite_schema import SCHEMA_VERSION

T0 = 1_700_000_000_000
REPO = Path(__file__).resolve().parents[2]


def rec(wf_id: str) -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=wf_id,
        workflow_name="wf",
        workflow_version=1,
        status="RUNNING",
        create_time=T0,
        update_time=T0,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(f"sqlite:///{tmp_path / 'db' / 'podium.db'}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _hold_writer(store: SqliteStore) -> Callable[[], None]:
    """Queue writes without running them until the returned function is called."""
    held = store.worker.hold()
    held.__enter__()

    def release() -> None:
        held.__exit__(None, None, None)

    return release


async def test_concurrent_commits_share_one_transaction(store: SqliteStore) -> None:
    results: dict[str, int] = {}

    async def commit(wf_id: str) -> None:
        results[wf_id] = await store.commit(Commit(record=rec(wf_id), expected_version=0), T0)

    before = store.worker.batches
    async with trio.open_nursery() as nursery:
        release = _hold_writer(store)
        for i in range(20):
            nursery.start_soon(commit, f"w{i}")
        # Every commit is queued behind the parked transaction; the loop is not blocked.
        await trio.testing.wait_all_tasks_blocked()
        release()
    assert results == {f"w{i}": 1 for i in range(20)}
    # One transaction for all twenty commits.
    assert store.worker.batches - before == 1
    loaded = await store.load_many([f"w{i}" for i in range(20)])
    assert all(r is not None and r.version == 1 for r in loaded)


async def test_a_conflict_in_a_group_fails_alone(store: SqliteStore) -> None:
    outcomes: dict[str, object] = {}

    async def commit(label: str, record: WorkflowRecord) -> None:
        try:
            outcomes[label] = await store.commit(Commit(record=record, expected_version=0), T0)
        except VersionConflict as exc:
            outcomes[label] = exc

    async with trio.open_nursery() as nursery:
        release = _hold_writer(store)
        nursery.start_soon(commit, "first", rec("dup"))
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(commit, "second", rec("dup"))
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(commit, "other", rec("other"))
        await trio.testing.wait_all_tasks_blocked()
        release()
    assert outcomes["first"] == 1
    assert isinstance(outcomes["second"], VersionConflict)
    assert outcomes["other"] == 1
    assert await store.running_ids("wf", None) == ["dup", "other"]


async def test_a_failing_job_rolls_back_alone(store: SqliteStore) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO task_def (name, body) VALUES ('half', x'00')")
        raise ValueError("boom")

    async with trio.open_nursery() as nursery:
        release = _hold_writer(store)
        errors: list[BaseException] = []

        async def failing() -> None:
            try:
                await store.worker.run(half_then_fail)
            except ValueError as exc:
                errors.append(exc)

        nursery.start_soon(failing)
        nursery.start_soon(store.put_task_def, "kept", b"k")
        await trio.testing.wait_all_tasks_blocked()
        release()
    assert [str(e) for e in errors] == ["boom"]
    assert await store.get_task_def("half") is None
    assert await store.get_task_def("kept") == b"k"


async def test_a_commit_failing_after_its_row_was_written_fails_alone(
    store: SqliteStore,
) -> None:
    # The bad priority only fails when its push binds, after the workflow row is written:
    # the transaction is replayed without that commit, and nothing of it lands.
    bad_push = QueueOp(kind="push", queue="q", message_id="bad-t", priority=10**20)
    commits = [
        Commit(record=rec("a"), expected_version=0, added_task_ids=["a-t"]),
        Commit(
            record=rec("bad"), expected_version=0, added_task_ids=["bad-t"], queue_ops=[bad_push]
        ),
        Commit(
            record=rec("b"),
            expected_version=0,
            queue_ops=[QueueOp(kind="push", queue="q", message_id="b-t")],
        ),
    ]
    replays = store.worker.replays
    results = await store.commit_many(commits, T0)
    assert results[0] == 1
    assert isinstance(results[1], OverflowError)
    assert results[2] == 1
    assert store.worker.replays == replays + 1
    assert await store.load("bad") is None
    assert await store.workflow_id_for_task("bad-t") is None
    assert await store.workflow_id_for_task("a-t") == "a"
    assert await store.peek("q", 10) == ["b-t"]


async def test_a_version_conflict_needs_no_rollback(store: SqliteStore) -> None:
    await store.commit(Commit(record=rec("v"), expected_version=0), T0)
    replays = store.worker.replays
    results = await store.commit_many(
        [
            Commit(record=rec("v"), expected_version=5),
            Commit(record=rec("v"), expected_version=0),
            Commit(record=rec("missing"), expected_version=1),
            Commit(record=rec("v"), expected_version=1),
        ],
        T0,
    )
    assert [type(r) for r in results[:3]] == [VersionConflict] * 3
    assert "at version 1, not 5" in str(results[0])
    assert "already exists" in str(results[1])
    assert "does not exist" in str(results[2])
    assert results[3] == 2
    assert store.worker.replays == replays


async def test_indexed_fields_changed_by_a_commit_are_searchable(store: SqliteStore) -> None:
    # Most commits skip the indexed columns; one that changes them must update them.
    await store.commit(Commit(record=rec("i"), expected_version=0), T0)
    moved = WorkflowRecord(
        workflow_id="i",
        workflow_name="wf",
        workflow_version=2,
        status="COMPLETED",
        create_time=T0,
        update_time=T0 + 5,
        end_time=T0 + 5,
        correlation_id="c-1",
        parent_workflow_id="p-1",
        body=b"done",
    )
    assert await store.commit(Commit(record=moved, expected_version=1), T0) == 2
    assert await store.ids_by_correlation("wf", "c-1", True) == ["i"]
    assert await store.running_ids("wf", None) == []
    loaded = await store.load("i")
    assert loaded is not None
    assert (loaded.status, loaded.workflow_version, loaded.end_time, loaded.body) == (
        "COMPLETED",
        2,
        T0 + 5,
        b"done",
    )
    same = msgspec.structs.replace(moved, update_time=T0 + 9, body=b"again")
    assert await store.commit(Commit(record=same, expected_version=2), T0) == 3
    loaded = await store.load("i")
    assert loaded is not None
    assert (loaded.update_time, loaded.body, loaded.version) == (T0 + 9, b"again", 3)


async def test_a_cancelled_commit_many_still_lands(store: SqliteStore) -> None:
    release = _hold_writer(store)
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.commit_many(
            [Commit(record=rec(f"m{i}"), expected_version=0) for i in range(3)], T0
        )
    assert scope.cancelled_caught
    release()
    await store.worker.run(lambda conn: None)  # FIFO: returns after the queued commits
    assert await store.running_ids("wf", None) == ["m0", "m1", "m2"]


async def test_wal_and_synchronous_normal(store: SqliteStore) -> None:
    mode = await store.worker.run(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
    sync = await store.worker.run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
    assert (mode, sync) == ("wal", 1)


async def test_both_connections_use_the_performance_settings(store: SqliteStore) -> None:
    def settings(conn: sqlite3.Connection) -> tuple[int, ...]:
        names = ("cache_size", "temp_store", "wal_autocheckpoint", "synchronous")
        return tuple(conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names)

    # The writer never checkpoints by itself (the loop must not wait for fsyncs).
    assert await store.worker.run(settings, write=False) == (-32768, 2, 0, 1)
    assert await store.reader.run(settings, write=False) == (-32768, 2, 10000, 1)


async def test_schema_version_is_recorded(store: SqliteStore) -> None:
    version = await store.worker.run(
        lambda c: c.execute("SELECT version FROM schema_version").fetchall()
    )
    assert version == [(SCHEMA_VERSION,)]


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (99)")
    conn.commit()
    conn.close()
    store = SqliteStore(f"sqlite:///{path}")
    with pytest.raises(Unavailable, match=r"schema version 99, newer than this Podium"):
        await store.open()
    await store.close()


async def test_an_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    store = SqliteStore(f"sqlite:///{tmp_path / 'dir.db'}")
    with pytest.raises(Unavailable, match="cannot open the SQLite database"):
        await store.open()


async def test_in_memory_database(tmp_path: Path) -> None:
    store = SqliteStore("sqlite:///:memory:")
    await store.open()
    try:
        assert await store.commit(Commit(record=rec("m"), expected_version=0), T0) == 1
        assert await store.running_ids("wf", 1) == ["m"]
    finally:
        await store.close()


async def test_using_a_closed_store_is_an_internal_error(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(InternalError, match="is not open"):
        await store.load("x")
    await store.open()
    await store.put_task_def("t", b"x")
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(InternalError, match="is not open"):
        await store.get_task_def("t")
    with pytest.raises(InternalError, match="is not open"):
        await store.push("q", "m", now_ms=T0)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///podium.db", "podium.db"),
        ("sqlite:///data/podium.db", "data/podium.db"),
        ("sqlite:////var/lib/podium.db", "/var/lib/podium.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_database_path(url: str, path: str) -> None:
    assert database_path(url) == path


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://host/x.db"])
def test_bad_sqlite_urls(url: str) -> None:
    with pytest.raises(BadRequest, match=r"use sqlite:///relative\.db"):
        database_path(url)


async def test_reads_do_not_wait_for_the_writer(store: SqliteStore) -> None:
    await store.commit(Commit(record=rec("r"), expected_version=0), T0)
    release = _hold_writer(store)
    # The writer is held; reads still answer from their own connection.
    loaded = await store.load("r")
    assert loaded is not None
    assert loaded.version == 1
    assert await store.running_ids("wf", None) == ["r"]
    release()


async def test_the_reader_connection_refuses_writes(store: SqliteStore) -> None:
    with pytest.raises(Unavailable, match="readonly"):
        await store.reader.run(lambda c: c.execute("DELETE FROM workflow"), write=False)


async def test_a_cancelled_caller_stops_waiting_but_its_commit_still_lands(
    store: SqliteStore,
) -> None:
    release = _hold_writer(store)
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.commit(Commit(record=rec("c"), expected_version=0), T0)
    assert scope.cancelled_caught
    release()
    # The writer ran the queued job: the outcome is decided by the store, not the caller.
    await store.worker.run(lambda conn: None)  # FIFO: returns after the queued commit
    loaded = await store.load("c")
    assert loaded is not None
    assert loaded.version == 1
    assert await store.commit(Commit(record=rec("c"), expected_version=1), T0) == 2


async def test_each_definition_is_stored_once_and_inserted_once(store: SqliteStore) -> None:
    statements: list[str] = []

    def trace(c: sqlite3.Connection) -> None:
        c.set_trace_callback(statements.append)

    await store.worker.run(trace, write=True)
    for i in range(5):
        record = msgspec.structs.replace(rec(f"w{i}"), definition_ref="r1", definition=b"d1")
        await store.commit(Commit(record=record, expected_version=0), T0)
    other = msgspec.structs.replace(rec("w9"), definition_ref="r2", definition=b"d2")
    await store.commit_many([Commit(record=other, expected_version=0)], T0)
    rows = await store.worker.run(
        lambda c: c.execute("SELECT ref, body FROM definition_blob ORDER BY ref").fetchall()
    )
    assert rows == [("r1", b"d1"), ("r2", b"d2")]
    # Only the first commit of each ref carried the INSERT (the store remembers it).
    inserts = [s for s in statements if "INTO definition_blob" in s]
    assert len(inserts) == 2
    await store.worker.run(lambda c: c.set_trace_callback(None), write=True)


async def test_an_older_schema_is_migrated_keeping_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite_schema.connect(str(path))
    assert sqlite_schema.migrate(conn, target=1) == 0
    conn.execute(
        "INSERT INTO workflow VALUES ('old', 'wf', 1, 'RUNNING', 1, 1, 0, 'c', NULL, '', x'00', 4)"
    )
    conn.close()
    store = SqliteStore(f"sqlite:///{path}")
    await store.open()
    try:
        versions = await store.worker.run(
            lambda c: c.execute("SELECT version FROM schema_version").fetchall()
        )
        assert versions == [(SCHEMA_VERSION,)]
        indexes = await store.worker.run(
            lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        )
        assert {"workflow_by_correlation_id", "workflow_by_parent"} <= indexes
        loaded = await store.load("old")
        assert loaded is not None
        assert loaded.version == 4
        assert (loaded.definition_ref, loaded.definition) == ("", b"")  # written before refs
        assert await store.ids_by_correlation("wf", "c", False) == ["old"]
    finally:
        await store.close()
    # Opening an up-to-date database again is a no-op.
    again = sqlite_schema.connect(str(path))
    assert sqlite_schema.migrate(again) == SCHEMA_VERSION
    again.close()


_CRASHING_WRITER = """
import os, sys, trio
from core.store import Commit, QueueOp, WorkflowRecord
from server.stores.sqlite import SqliteStore

async def main():
    store = SqliteStore(sys.argv[1])
    await store.open()
    async with trio.open_nursery() as nursery:
        for i in range(40):
            record = WorkflowRecord(workflow_id=f"w{i}", workflow_name="wf", workflow_version=1,
                                    status="RUNNING", create_time=1, update_time=1)
            op = QueueOp(kind="push", queue="q", message_id=f"t{i}")
            nursery.start_soon(store.commit, Commit(record=record, expected_version=0,
                                                    queue_ops=[op]), 1)
    print("committed", flush=True)
    os._exit(0)  # no close(): the process dies with the connection open

trio.run(main)
"""


async def test_commits_survive_a_process_that_dies_without_closing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    done = await trio.run_process(
        [sys.executable, "-c", _CRASHING_WRITER, url], capture_stdout=True, cwd=REPO
    )
    assert done.stdout == b"committed\n"
    store = SqliteStore(url)
    await store.open()
    try:
        assert await store.running_ids("wf", None) == sorted(f"w{i}" for i in range(40))
        assert await store.size("q") == 40
    finally:
        await store.close()


async def test_commits_started_together_share_one_transaction_without_holding(
    store: SqliteStore,
) -> None:
    # The flusher runs once per scheduler batch: tasks made runnable together queue first.
    before = store.worker.batches
    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(store.commit, Commit(record=rec(f"t{i}"), expected_version=0), T0)
    assert store.worker.batches - before == 1
    assert len(await store.running_ids("wf", None)) == 10


async def test_the_wal_stays_bounded_under_sustained_writes(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Checkpoints run on another thread while commits go on; the WAL file must not grow
    # with the number of commits.
    monkeypatch.setattr(sqlite_inline, "CHECKPOINT_EVERY", 200)
    monkeypatch.setattr(sqlite_inline, "WAL_LIMIT_PAGES", 400)
    wal = store.path + "-wal"
    body = bytes(3000)  # about one page per commit

    async def writer(round_: int, lane: int) -> None:
        for i in range(500):
            record = msgspec.structs.replace(rec(f"b{round_}-{lane}-{i}"), body=body)
            await store.commit(Commit(record=record, expected_version=0), T0)

    sizes: list[int] = []
    for round_ in range(4):
        async with trio.open_nursery() as nursery:
            for lane in range(8):
                nursery.start_soon(writer, round_, lane)
        sizes.append((await trio.Path(wal).stat()).st_size)
    # 16,000 commits of ~3 pages each (about 200 MB of WAL without checkpoints); the
    # bound leaves room for the limit plus a few checkpoint intervals of pages.
    assert store.worker.write_pauses > 0
    assert max(sizes) < 4096 * 4000, sizes
    assert sizes[-1] < 2 * sizes[0], sizes  # the file is reused, not grown


async def test_a_store_used_from_another_trio_run_is_an_internal_error(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'runs.db'}")
    await store.open()
    try:

        async def elsewhere() -> None:
            with pytest.raises(InternalError, match="opened in another trio run"):
                await store.put_task_def("t", b"x")

        await trio.to_thread.run_sync(trio.run, elsewhere)
    finally:
        await store.close()
