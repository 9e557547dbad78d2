"""PostgresStore beyond the contract: schemas, migrations, group commit, other processes.

Rules: real PostgreSQL (the `postgres_dsn` fixture skips without it, fails under CI=true);
each test works in its own schema and drops it. Batching is asserted on the group
committer's counters, staged deterministically by holding a row lock from a second
connection so the first transaction waits while the others queue up; never on timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import trio

from core.errors import BadRequest, Unavailable, VersionConflict
from core.store import Commit, QueueOp, WorkflowRecord
from server.stores.bridge import AsyncioBridge
from server.stores.pg_migrations import MIGRATIONS
from server.stores.postgres import PgOptions, PostgresStore, parse_url
from tests.server.remote_stores import REPO, drop_postgres_schema, with_query

pytestmark = pytest.mark.postgres
T0 = 1_700_000_000_000


def rec(wf_id: str, *, name: str = "order", body: bytes = b"{}") -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=wf_id,
        workflow_name=name,
        workflow_version=1,
        status="RUNNING",
        create_time=T0,
        update_time=T0,
        body=body,
    )


@pytest.fixture
async def schema(postgres_dsn: str) -> AsyncIterator[str]:
    name = f"podium_t_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        await drop_postgres_schema(postgres_dsn, name)


@pytest.fixture
async def store(postgres_dsn: str, schema: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(with_query(postgres_dsn, schema=schema))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def sql(postgres_dsn: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Run a coroutine on a separate asyncpg connection: `await sql(lambda conn: ...)`."""
    bridge = AsyncioBridge.acquire()
    conn = await bridge.run(lambda: asyncpg.connect(postgres_dsn))

    async def run(fn: Callable[[Any], Awaitable[Any]]) -> Any:
        return await bridge.run(lambda: fn(conn))

    try:
        yield run
    finally:
        await bridge.run(conn.close)
        bridge.release()


async def applied(sql: Callable[..., Awaitable[Any]], schema: str) -> list[tuple[int, str]]:
    rows = await sql(
        lambda c: c.fetch(f'SELECT version, name FROM "{schema}".schema_migrations ORDER BY 1')
    )
    return [(r["version"], r["name"]) for r in rows]


# ====================================================================== schema


async def test_open_creates_the_schema_with_every_migration_once(
    store: PostgresStore, schema: str, sql: Callable[..., Awaitable[Any]]
) -> None:
    assert await applied(sql, schema) == [(m.version, m.name) for m in MIGRATIONS]
    tables = await sql(
        lambda c: c.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
    )
    assert {"workflow", "task_index", "queue_message", "workflow_def"} <= {
        t["tablename"] for t in tables
    }


async def test_reopening_applies_nothing_and_keeps_data(
    postgres_dsn: str, schema: str, sql: Callable[..., Awaitable[Any]]
) -> None:
    url = with_query(postgres_dsn, schema=schema)
    first = PostgresStore(url)
    await first.open()
    await first.commit(Commit(record=rec("w1"), expected_version=0), T0)
    await first.close()
    before = await applied(sql, schema)
    second = PostgresStore(url)
    await second.open()
    try:
        assert await applied(sql, schema) == before
        loaded = await second.load("w1")
        assert loaded is not None
        assert loaded.version == 1
    finally:
        await second.close()


async def test_concurrent_openers_migrate_exactly_once(
    postgres_dsn: str, schema: str, sql: Callable[..., Awaitable[Any]]
) -> None:
    stores = [PostgresStore(with_query(postgres_dsn, schema=schema)) for _ in range(4)]
    async with trio.open_nursery() as nursery:
        for s in stores:
            nursery.start_soon(s.open)
    try:
        assert await applied(sql, schema) == [(m.version, m.name) for m in MIGRATIONS]
    finally:
        for s in stores:
            await s.close()


async def test_a_schema_from_a_newer_podium_is_refused(
    store: PostgresStore, schema: str, sql: Callable[..., Awaitable[Any]]
) -> None:
    await sql(
        lambda c: c.execute(
            f"INSERT INTO \"{schema}\".schema_migrations (version, name) VALUES (999, 'future')"
        )
    )
    again = PostgresStore(store.url)
    with pytest.raises(Unavailable, match="at migration 999, newer than this Podium"):
        await again.open()


@pytest.mark.parametrize(
    ("url_tail", "message"),
    [
        ("?schema=Bad-Name", "must be a lower-case identifier"),
        ("?schema=x;drop", "must be a lower-case identifier"),
        ("?pool_size=0", "pool_size must be an integer 1..1000"),
        ("?commit_batch=x", "commit_batch must be an integer"),
    ],
)
def test_bad_url_parameters_are_rejected(url_tail: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        PostgresStore("postgresql://postgres@127.0.0.1:5432/test" + url_tail)


def test_podium_parameters_are_split_off_the_dsn() -> None:
    options = parse_url(
        "postgres://u@h:5/db?schema=s1&sslmode=disable&commit_batch=1&commit_in_flight=2"
    )
    assert options == PgOptions(
        dsn="postgresql://u@h:5/db?sslmode=disable",
        schema="s1",
        commit_batch=1,
        commit_in_flight=2,
    )


async def test_schemas_isolate_stores(postgres_dsn: str, store: PostgresStore) -> None:
    other_schema = f"podium_t_{uuid.uuid4().hex[:12]}"
    other = PostgresStore(with_query(postgres_dsn, schema=other_schema))
    await other.open()
    try:
        await store.commit(Commit(record=rec("w1"), expected_version=0), T0)
        await store.push("q", "m1", now_ms=T0)
        assert await other.load("w1") is None
        assert await other.size("q") == 0
        assert await other.running_ids("order", None) == []
    finally:
        await other.close()
        await drop_postgres_schema(postgres_dsn, other_schema)


async def test_another_process_sees_committed_state(store: PostgresStore) -> None:
    await store.commit(
        Commit(
            record=rec("w1", body=b"hello"),
            expected_version=0,
            added_task_ids=["t1"],
            queue_ops=[QueueOp(kind="push", queue="tasks", message_id="t1")],
        ),
        T0,
    )
    out = await trio.to_thread.run_sync(_read_in_subprocess, store.url)
    assert out == {"body": "hello", "version": 1, "task_owner": "w1", "popped": ["t1"]}


def _read_in_subprocess(url: str) -> dict[str, Any]:
    script = f"""
import json, trio
from server.stores.postgres import PgOptions, PostgresStore, parse_url
async def main():
    s = PostgresStore({url!r})
    await s.open()
    r = await s.load("w1")
    out = {{"body": r.body.decode(), "version": r.version,
            "task_owner": await s.workflow_id_for_task("t1"),
            "popped": await s.pop("tasks", 5, unack_ms=1000, now_ms={T0})}}
    await s.close()
    print(json.dumps(out))
trio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# ====================================================================== group commit


async def _hold_row_lock(
    sql: Callable[..., Awaitable[Any]], schema: str, wf_id: str
) -> Callable[[], Awaitable[None]]:
    """Lock `wf_id`'s row from another connection; returns the release function."""
    await sql(lambda c: c.execute("BEGIN"))
    await sql(
        lambda c: c.execute(
            f'SELECT 1 FROM "{schema}".workflow WHERE workflow_id = $1 FOR UPDATE', wf_id
        )
    )

    async def release() -> None:
        await sql(lambda c: c.execute("COMMIT"))

    return release


async def _wait_pending(store: PostgresStore, count: int) -> None:
    committer = store.committer
    assert committer is not None
    with trio.fail_after(10):
        # The committer lives on the asyncio thread: there is no trio event to wait on.
        while committer.pending < count:  # noqa: ASYNC110
            await trio.sleep(0.005)


async def _wait_in_flight(store: PostgresStore) -> None:
    """Until one batch is on the wire and nothing waits (the next commits queue up)."""
    committer = store.committer
    assert committer is not None
    with trio.fail_after(10):
        while committer.in_flight != 1 or committer.pending != 0:  # noqa: ASYNC110
            await trio.sleep(0.005)


async def test_commits_arriving_during_a_transaction_share_the_next_one(
    store: PostgresStore, schema: str, sql: Callable[..., Awaitable[Any]]
) -> None:
    committer = store.committer
    assert committer is not None
    for i in range(32):
        await store.commit(Commit(record=rec(f"w{i}"), expected_version=0), T0)
    base_tx, base_commits = committer.stats.transactions, committer.stats.commits
    assert (base_tx, base_commits) == (32, 32)  # one by one: each was alone

    release = await _hold_row_lock(sql, schema, "w0")
    results: dict[int, object] = {}

    async def update(i: int, expected: int) -> None:
        try:
            results[i] = await store.commit(
                Commit(record=rec(f"w{i}", body=b"v2"), expected_version=expected), T0
            )
        except VersionConflict as exc:
            results[i] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(update, 0, 1)  # goes out alone and waits on the lock
        await _wait_in_flight(store)
        for i in range(1, 32):
            nursery.start_soon(update, i, 7 if i == 5 else 1)  # w5's version is stale
        await _wait_pending(store, 31)
        await release()

    assert committer.stats.transactions - base_tx == 2
    assert committer.stats.largest_batch == 31
    assert isinstance(results.pop(5), VersionConflict)
    assert results == {i: 2 for i in range(32) if i != 5}
    loaded = await store.load_many(["w4", "w5"])
    assert [r.version if r else None for r in loaded] == [2, 1]


async def test_a_bad_item_fails_alone_inside_a_batch(
    store: PostgresStore, schema: str, sql: Callable[..., Awaitable[Any]]
) -> None:
    await store.commit(Commit(record=rec("w0"), expected_version=0), T0)
    release = await _hold_row_lock(sql, schema, "w0")
    results: dict[str, object] = {}

    async def write(wf_id: str, name: str, expected: int) -> None:
        try:
            results[wf_id] = await store.commit(
                Commit(record=rec(wf_id, name=name), expected_version=expected), T0
            )
        except BadRequest as exc:
            results[wf_id] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write, "w0", "order", 1)
        await _wait_in_flight(store)  # w0's transaction is out, waiting on the lock
        nursery.start_soon(write, "good1", "order", 0)
        nursery.start_soon(write, "bad", "nul\x00name", 0)
        nursery.start_soon(write, "good2", "order", 0)
        await _wait_pending(store, 3)
        await release()

    assert results["w0"] == 2
    assert results["good1"] == 1
    assert results["good2"] == 1
    assert isinstance(results["bad"], BadRequest)
    assert "NUL" in str(results["bad"])
    assert await store.load("bad") is None


async def test_a_commit_cancelled_before_its_batch_starts_is_never_applied(
    store: PostgresStore, schema: str, sql: Callable[..., Awaitable[Any]]
) -> None:
    await store.commit(Commit(record=rec("w0"), expected_version=0), T0)
    release = await _hold_row_lock(sql, schema, "w0")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            store.commit, Commit(record=rec("w0", body=b"v2"), expected_version=1), T0
        )
        await _wait_in_flight(store)
        with trio.CancelScope() as scope:
            nursery.start_soon(_cancel_when_pending, store, scope)
            await store.commit(Commit(record=rec("never"), expected_version=0), T0)
        assert scope.cancelled_caught
        await release()
    assert await store.load("never") is None
    loaded = await store.load("w0")
    assert loaded is not None
    assert loaded.body == b"v2"


async def _cancel_when_pending(store: PostgresStore, scope: trio.CancelScope) -> None:
    await _wait_pending(store, 1)
    scope.cancel()


async def test_commit_many_on_one_workflow_applies_in_order_across_transactions(
    store: PostgresStore,
) -> None:
    committer = store.committer
    assert committer is not None
    await store.commit(Commit(record=rec("w1"), expected_version=0), T0)
    before = committer.stats.transactions
    results = await store.commit_many(
        [
            Commit(record=rec("w1", body=b"2"), expected_version=1),
            Commit(record=rec("w2"), expected_version=0),
            Commit(record=rec("w1", body=b"3"), expected_version=2),  # needs the first
        ],
        T0,
    )
    assert results == [2, 1, 3]
    # Set-based writes cannot touch one row twice: the batch is cut before the repeat.
    assert committer.stats.transactions - before == 2
    loaded = await store.load("w1")
    assert loaded is not None
    assert loaded.body == b"3"


def test_take_batch_cuts_before_the_first_overlap_and_keeps_order() -> None:
    from server.stores.pg_group_commit import _Slot, take_batch

    def slot(wf_id: str, *, task: str | None = None, message: str | None = None) -> _Slot:
        ops = [] if message is None else [QueueOp(kind="push", queue="q", message_id=message)]
        commit = Commit(
            record=rec(wf_id),
            expected_version=1,
            added_task_ids=[] if task is None else [task],
            queue_ops=ops,
        )
        return _Slot(commit, T0, None)  # type: ignore[arg-type]

    pending = [
        slot("a", task="t1"),
        slot("b", message="m1"),
        slot("c", task="t1"),  # same task id as "a": starts the next batch
        slot("d"),
    ]
    first = take_batch(pending, 10)
    assert [s.commit.record.workflow_id for s in first] == ["a", "b"]
    assert [s.commit.record.workflow_id for s in pending] == ["c", "d"]
    assert [s.commit.record.workflow_id for s in take_batch(pending, 1)] == ["c"]
    assert [s.commit.record.workflow_id for s in take_batch([slot("x"), slot("x")], 10)] == ["x"]


def test_each_commit_keeps_only_its_final_queue_op_per_message() -> None:
    from server.stores.pg_group_commit import _Slot, batch_args

    commit = Commit(
        record=rec("w"),
        expected_version=1,
        added_task_ids=["t2"],
        removed_task_ids=["t1", "t2"],
        queue_ops=[
            QueueOp(kind="push", queue="q", message_id="m1", priority=1),
            QueueOp(kind="push", queue="q", message_id="m2"),
            QueueOp(kind="remove", queue="q", message_id="m2"),
            QueueOp(kind="push", queue="q", message_id="m1", priority=9),
        ],
    )
    args = batch_args([_Slot(commit, T0, None)])  # type: ignore[arg-type]
    t_id, t_add = args[13], args[14]
    q_push, q_id, q_prio = args[16], args[18], args[19]
    assert list(zip(t_id, t_add, strict=True)) == [("t1", False), ("t2", True)]
    assert list(zip(q_id, q_push, q_prio, strict=True)) == [("m2", False, 0), ("m1", True, 9)]


async def test_an_unreachable_server_is_unavailable_not_a_crash() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test?schema=nowhere")
    with pytest.raises(Unavailable, match="PostgreSQL is unavailable"):
        await store.open()
    with pytest.raises(BadRequest, match="not open"):
        await store.load("w1")


async def test_a_pop_skips_the_flush_wait_only_for_its_own_transaction(
    postgres_dsn: str, schema: str
) -> None:
    # One pooled connection, so the pop and the checks below share a session.
    store = PostgresStore(with_query(postgres_dsn, schema=schema, pool_size="1"))
    await store.open()
    try:
        await store.push("q", "m", now_ms=T0)
        before = await store._run(lambda p: p.fetchval("SHOW synchronous_commit"))
        inside = await store._run(
            lambda p: p.fetchval(
                "SELECT current_setting('synchronous_commit') "
                "FROM pop_messages('q', $1, 1, $2) LIMIT 1",
                T0,
                T0 + 1000,
            )
        )
        after = await store._run(lambda p: p.fetchval("SHOW synchronous_commit"))
        assert inside == "off"
        assert after == before
        assert await store.pop("q", 1, unack_ms=10, now_ms=T0 + 1000) == ["m"]
    finally:
        await store.close()


async def test_a_definition_is_one_row_and_rows_only_name_it(
    store: PostgresStore, schema: str, sql: Callable[..., Awaitable[Any]]
) -> None:
    import msgspec

    definition = b"\x00the definition\xff" * 20

    def with_def(wf_id: str) -> WorkflowRecord:
        return msgspec.structs.replace(rec(wf_id), definition_ref="r1", definition=definition)

    await store.commit(Commit(record=with_def("w1"), expected_version=0), T0)
    await store.commit_many(
        [Commit(record=with_def(f"w{i}"), expected_version=0) for i in (2, 3)], T0
    )
    blobs = await sql(lambda c: c.fetch(f'SELECT ref, body FROM "{schema}".definition_blob'))
    assert [(b["ref"], b["body"]) for b in blobs] == [("r1", definition)]
    bodies = await sql(lambda c: c.fetch(f'SELECT body FROM "{schema}".workflow'))
    assert all(definition not in b["body"] for b in bodies)
    fresh = PostgresStore(store.url)  # a cold cache reads r1 from definition_blob
    await fresh.open()
    try:
        loaded = await fresh.load_many(["w1", "w2", "w3"])
        assert [(r.definition_ref, r.definition, r.body) for r in loaded if r] == [
            ("r1", definition, b"{}")
        ] * 3
    finally:
        await fresh.close()
