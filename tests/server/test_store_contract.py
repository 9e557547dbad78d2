"""The one contract suite every store backend passes (core/store.py's rules, spec 1.2, 5.1).

Rules: backend-agnostic. Backends come from tests/server/store_backends.py; a test only
uses the core.store.Store interface. Time is always passed as `now_ms`: no sleeps. Expected
results are written out by hand, never computed with the code under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.lowlevel

from core.errors import BadRequest, VersionConflict
from core.store import (
    DECIDER_QUEUE,
    Commit,
    LogLine,
    PollRecord,
    QueueOp,
    SearchRequest,
    Store,
    WorkflowRecord,
)
from server.stores import open_store
from tests.server.store_backends import BACKENDS, backend_params, opened

T0 = 1_700_000_000_000


@pytest.fixture(params=backend_params())
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with BACKENDS[request.param].open(request) as s:
        yield s


def rec(
    wf_id: str,
    *,
    name: str = "order",
    version: int = 1,
    status: str = "RUNNING",
    create: int = T0,
    update: int | None = None,
    end: int = 0,
    corr: str | None = None,
    parent: str | None = None,
    text: str = "",
    body: bytes = b'{"n":0}',
) -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=wf_id,
        workflow_name=name,
        workflow_version=version,
        status=status,
        create_time=create,
        update_time=create if update is None else update,
        end_time=end,
        correlation_id=corr,
        parent_workflow_id=parent,
        search_text=text,
        body=body,
    )


async def create(store: Store, record: WorkflowRecord, **kw: object) -> int:
    return await store.commit(Commit(record=record, expected_version=0, **kw), T0)  # type: ignore[arg-type]


def push(queue: str, message_id: str, *, priority: int = 0, delay_ms: int = 0) -> QueueOp:
    return QueueOp(
        kind="push", queue=queue, message_id=message_id, priority=priority, delay_ms=delay_ms
    )


# ====================================================================== metadata


async def test_task_defs_crud(store: Store) -> None:
    assert await store.get_task_def("t1") is None
    assert await store.list_task_defs() == []
    await store.put_task_def("t2", b'{"name":"t2"}')
    await store.put_task_def("t1", b'{"name":"t1"}')
    await store.put_task_def("t1", b'{"name":"t1","retryCount":5}')
    assert await store.get_task_def("t1") == b'{"name":"t1","retryCount":5}'
    assert sorted(await store.list_task_defs()) == [
        b'{"name":"t1","retryCount":5}',
        b'{"name":"t2"}',
    ]
    assert await store.delete_task_def("t1") is True
    assert await store.delete_task_def("t1") is False
    assert await store.get_task_def("t1") is None
    assert await store.list_task_defs() == [b'{"name":"t2"}']


async def test_workflow_defs_every_version_and_latest(store: Store) -> None:
    assert await store.get_workflow_def("wf", None) is None
    await store.put_workflow_def("wf", 1, b"v1")
    await store.put_workflow_def("wf", 10, b"v10")
    await store.put_workflow_def("wf", 2, b"v2")
    await store.put_workflow_def("other", 1, b"o1")
    # Latest is the highest number, not the last written (and 10 > 2 numerically).
    assert await store.get_workflow_def("wf", None) == b"v10"
    assert await store.get_workflow_def("wf", 2) == b"v2"
    assert await store.get_workflow_def("wf", 3) is None
    assert sorted(await store.list_workflow_defs()) == [b"o1", b"v1", b"v10", b"v2"]
    await store.put_workflow_def("wf", 2, b"v2-updated")
    assert await store.get_workflow_def("wf", 2) == b"v2-updated"
    assert await store.delete_workflow_def("wf", 10) is True
    assert await store.delete_workflow_def("wf", 10) is False
    assert await store.get_workflow_def("wf", None) == b"v2-updated"
    assert await store.delete_workflow_def("wf", 1) is True
    assert await store.delete_workflow_def("wf", 2) is True
    assert await store.get_workflow_def("wf", None) is None
    assert await store.list_workflow_defs() == [b"o1"]


async def test_event_handlers_crud(store: Store) -> None:
    await store.put_event_handler("h1", b"a")
    await store.put_event_handler("h2", b"b")
    await store.put_event_handler("h1", b"c")
    assert await store.get_event_handler("h1") == b"c"
    assert await store.get_event_handler("nope") is None
    assert sorted(await store.list_event_handlers()) == [b"b", b"c"]
    assert await store.delete_event_handler("h2") is True
    assert await store.delete_event_handler("h2") is False
    assert await store.list_event_handlers() == [b"c"]


# ====================================================================== commits


async def test_create_then_load_round_trips_every_field(store: Store) -> None:
    r = rec(
        "w1",
        version=3,
        status="PAUSED",
        create=T0,
        update=T0 + 5,
        end=T0 + 9,
        corr="c1",
        parent="p1",
        text="hello",
        body=b"\x00binary\xff",
    )
    assert await create(store, r) == 1
    loaded = await store.load("w1")
    assert loaded is not None
    assert (loaded.workflow_id, loaded.workflow_name, loaded.workflow_version) == ("w1", "order", 3)
    assert (loaded.status, loaded.create_time, loaded.update_time, loaded.end_time) == (
        "PAUSED",
        T0,
        T0 + 5,
        T0 + 9,
    )
    assert (loaded.correlation_id, loaded.parent_workflow_id) == ("c1", "p1")
    assert loaded.search_text == "hello"
    assert loaded.body == b"\x00binary\xff"
    assert loaded.version == 1
    assert await store.load("missing") is None


async def test_create_of_existing_id_conflicts_and_changes_nothing(store: Store) -> None:
    await create(store, rec("w1", body=b"first"))
    with pytest.raises(VersionConflict):
        await create(
            store, rec("w1", body=b"second"), added_task_ids=["t9"], queue_ops=[push("q", "t9")]
        )
    loaded = await store.load("w1")
    assert loaded is not None
    assert loaded.body == b"first"
    assert loaded.version == 1
    assert await store.workflow_id_for_task("t9") is None
    assert await store.contains("q", "t9") is False


async def test_update_with_the_loaded_version_increments_it(store: Store) -> None:
    await create(store, rec("w1"))
    v = await store.commit(
        Commit(record=rec("w1", status="COMPLETED", body=b"done", end=T0 + 1), expected_version=1),
        T0 + 1,
    )
    assert v == 2
    loaded = await store.load("w1")
    assert loaded is not None
    assert (loaded.version, loaded.status, loaded.body, loaded.end_time) == (
        2,
        "COMPLETED",
        b"done",
        T0 + 1,
    )
    v3 = await store.commit(Commit(record=rec("w1"), expected_version=2), T0 + 2)
    assert v3 == 3


async def test_version_conflict_applies_nothing_including_queue_ops(store: Store) -> None:
    await create(
        store,
        rec("w1", body=b"v1"),
        added_task_ids=["t1"],
        queue_ops=[push("tasks", "t1"), push(DECIDER_QUEUE, "w1", delay_ms=30_000)],
    )
    await store.commit(Commit(record=rec("w1", body=b"v2"), expected_version=1), T0)
    stale = Commit(
        record=rec("w1", body=b"stale", status="FAILED"),
        expected_version=1,
        added_task_ids=["t2"],
        removed_task_ids=["t1"],
        queue_ops=[
            push("tasks", "t2"),
            QueueOp(kind="remove", queue="tasks", message_id="t1"),
            QueueOp(kind="ack", queue=DECIDER_QUEUE, message_id="w1"),
        ],
    )
    with pytest.raises(VersionConflict):
        await store.commit(stale, T0 + 1)
    loaded = await store.load("w1")
    assert loaded is not None
    assert (loaded.body, loaded.version, loaded.status) == (
        b"v2",
        2,
        "RUNNING",
    )
    assert await store.workflow_id_for_task("t1") == "w1"
    assert await store.workflow_id_for_task("t2") is None
    assert await store.contains("tasks", "t1") is True
    assert await store.contains("tasks", "t2") is False
    assert await store.contains(DECIDER_QUEUE, "w1") is True


async def test_update_of_a_missing_workflow_conflicts(store: Store) -> None:
    with pytest.raises(VersionConflict):
        await store.commit(
            Commit(record=rec("ghost"), expected_version=4, queue_ops=[push("q", "m")]), T0
        )
    assert await store.load("ghost") is None
    assert await store.size("q") == 0


async def test_queue_ops_apply_with_the_commit(store: Store) -> None:
    await store.push("tasks", "old", now_ms=T0)
    await store.push(DECIDER_QUEUE, "w1", now_ms=T0)
    await store.commit(
        Commit(
            record=rec("w1"),
            expected_version=0,
            added_task_ids=["t1", "t2"],
            queue_ops=[
                push("tasks", "t1", priority=5),
                push("tasks", "t2", delay_ms=1000),
                QueueOp(kind="remove", queue="tasks", message_id="old"),
                QueueOp(kind="ack", queue=DECIDER_QUEUE, message_id="w1"),
            ],
        ),
        T0,
    )
    assert await store.contains("tasks", "old") is False
    assert await store.contains(DECIDER_QUEUE, "w1") is False
    assert await store.size("tasks") == 2
    # t2 was pushed with a delay relative to the commit's now_ms.
    assert await store.pop("tasks", 10, unack_ms=60_000, now_ms=T0) == ["t1"]
    assert await store.pop("tasks", 10, unack_ms=60_000, now_ms=T0 + 999) == []
    assert await store.pop("tasks", 10, unack_ms=60_000, now_ms=T0 + 1000) == ["t2"]


async def test_concurrent_commits_on_one_workflow_exactly_one_wins(store: Store) -> None:
    await create(store, rec("w1"))
    outcomes: dict[str, object] = {}

    async def writer(name: str) -> None:
        loaded = await store.load("w1")
        assert loaded is not None
        await trio.lowlevel.checkpoint()  # both writers hold version 1 before either commits
        try:
            outcomes[name] = await store.commit(
                Commit(
                    record=rec("w1", body=name.encode()),
                    expected_version=loaded.version,
                    queue_ops=[push("q", name)],
                ),
                T0,
            )
        except VersionConflict as exc:
            outcomes[name] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer, "a")
        nursery.start_soon(writer, "b")
    winners = [n for n, o in outcomes.items() if o == 2]
    losers = [n for n, o in outcomes.items() if isinstance(o, VersionConflict)]
    assert len(winners) == 1
    assert len(losers) == 1
    loaded = await store.load("w1")
    assert loaded is not None
    assert loaded.body == winners[0].encode()
    assert loaded.version == 2
    assert await store.peek("q", 10) == winners


async def test_commit_many_mixes_ok_and_conflicting_slots(store: Store) -> None:
    await create(store, rec("exists"))
    await create(store, rec("upd"))
    results = await store.commit_many(
        [
            Commit(record=rec("new1"), expected_version=0, queue_ops=[push("q", "new1")]),
            Commit(
                record=rec("exists", body=b"x"),
                expected_version=0,
                queue_ops=[push("q", "dup")],
                added_task_ids=["dup-task"],
            ),
            Commit(record=rec("upd", body=b"u"), expected_version=1, added_task_ids=["ut"]),
            Commit(
                record=rec("exists", body=b"y"), expected_version=7, queue_ops=[push("q", "stale")]
            ),
        ],
        T0,
    )
    assert results[0] == 1
    assert results[2] == 2
    assert isinstance(results[1], VersionConflict)
    assert isinstance(results[3], VersionConflict)
    assert sorted(await store.peek("q", 10)) == ["new1"]
    assert await store.workflow_id_for_task("ut") == "upd"
    assert await store.workflow_id_for_task("dup-task") is None
    exists = await store.load("exists")
    assert exists is not None
    assert exists.body == b'{"n":0}'
    assert exists.version == 1
    upd = await store.load("upd")
    assert upd is not None
    assert upd.body == b"u"
    assert await store.commit_many([], T0) == []


async def test_load_many_keeps_order_and_marks_missing(store: Store) -> None:
    await create(store, rec("a", body=b"A"))
    await create(store, rec("b", body=b"B"))
    loaded = await store.load_many(["b", "zz", "a", "b"])
    assert [r.body if r else None for r in loaded] == [b"B", None, b"A", b"B"]
    assert await store.load_many([]) == []


async def test_delete_removes_execution_task_index_and_decider_message(store: Store) -> None:
    await create(
        store,
        rec("w1"),
        added_task_ids=["t1", "t2"],
        queue_ops=[push(DECIDER_QUEUE, "w1"), push("tasks", "t1")],
    )
    await create(store, rec("w2"), added_task_ids=["t3"], queue_ops=[push(DECIDER_QUEUE, "w2")])
    assert await store.delete("w1") is True
    assert await store.load("w1") is None
    assert await store.workflow_id_for_task("t1") is None
    assert await store.workflow_id_for_task("t2") is None
    assert await store.contains(DECIDER_QUEUE, "w1") is False
    # Other workflows are untouched.
    assert await store.workflow_id_for_task("t3") == "w2"
    assert await store.contains(DECIDER_QUEUE, "w2") is True
    assert await store.delete("w1") is False
    assert await store.running_ids("order", None) == ["w2"]
    # The id is free again.
    assert await create(store, rec("w1")) == 1


async def test_task_id_index_follows_added_and_removed(store: Store) -> None:
    await create(store, rec("w1"), added_task_ids=["t1", "t2"])
    assert await store.workflow_id_for_task("t1") == "w1"
    await store.commit(
        Commit(
            record=rec("w1"), expected_version=1, added_task_ids=["t3"], removed_task_ids=["t1"]
        ),
        T0,
    )
    assert await store.workflow_id_for_task("t1") is None
    assert await store.workflow_id_for_task("t2") == "w1"
    assert await store.workflow_id_for_task("t3") == "w1"
    assert await store.workflow_id_for_task("unknown") is None


async def test_running_ids_are_the_non_terminal_ones(store: Store) -> None:
    await create(store, rec("r1", version=1))
    await create(store, rec("r2", version=2))
    await create(store, rec("p1", version=1, status="PAUSED"))
    for i, status in enumerate(("COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED")):
        await create(store, rec(f"done{i}", status=status))
    await create(store, rec("other", name="payment"))
    assert sorted(await store.running_ids("order", None)) == ["p1", "r1", "r2"]
    assert sorted(await store.running_ids("order", 1)) == ["p1", "r1"]
    assert await store.running_ids("order", 2) == ["r2"]
    assert await store.running_ids("order", 9) == []
    assert await store.running_ids("nope", None) == []
    # A workflow that completes leaves the running set.
    await store.commit(Commit(record=rec("r1", status="COMPLETED"), expected_version=1), T0)
    assert sorted(await store.running_ids("order", None)) == ["p1", "r2"]


async def test_ids_by_correlation(store: Store) -> None:
    await create(store, rec("a", corr="c1"))
    await create(store, rec("b", corr="c1", status="COMPLETED"))
    await create(store, rec("c", corr="c1", status="PAUSED"))
    await create(store, rec("d", corr="c2"))
    await create(store, rec("e", corr="c1", name="payment"))
    assert await store.ids_by_correlation("order", "c1", False) == ["a"]
    assert sorted(await store.ids_by_correlation("order", "c1", True)) == ["a", "b", "c"]
    assert await store.ids_by_correlation("order", "zzz", True) == []
    # Changing the correlation id moves the workflow.
    await store.commit(Commit(record=rec("a", corr="c2"), expected_version=1), T0)
    assert sorted(await store.ids_by_correlation("order", "c2", False)) == ["a", "d"]
    assert sorted(await store.ids_by_correlation("order", "c1", True)) == ["b", "c"]


# ====================================================================== search

SEARCH_ROWS = [
    rec(
        "wf-a",
        name="order",
        version=1,
        status="RUNNING",
        create=1000,
        update=1500,
        corr="c-1",
        text='{"customer":"Alice"}',
    ),
    rec(
        "wf-b",
        name="order",
        version=2,
        status="COMPLETED",
        create=2000,
        update=2600,
        end=2600,
        corr="c-2",
        text='{"customer":"bob"}',
    ),
    rec(
        "wf-c",
        name="order",
        version=2,
        status="FAILED",
        create=3000,
        update=3300,
        end=3300,
        parent="wf-a",
        text="shipment failed",
    ),
    rec(
        "wf-d",
        name="payment",
        version=1,
        status="TIMED_OUT",
        create=4000,
        update=4500,
        end=4500,
        corr="c-1",
        parent="wf-a",
    ),
    rec(
        "wf-e",
        name="payment_v2",
        version=3,
        status="PAUSED",
        create=5000,
        update=5100,
        corr="",
        text='it\'s "quoted" 100%',
    ),
    rec(
        "wf-f",
        name="order.special",
        version=1,
        status="TERMINATED",
        create=6000,
        update=6100,
        end=6100,
        corr="x*y",
        parent="wf-b",
        text="O'Brien",
    ),
]


@pytest.fixture
async def searchable(store: Store) -> Store:
    for r in SEARCH_ROWS:
        await create(store, r)
    return store


def ids(letters: str) -> list[str]:
    return [f"wf-{c}" for c in letters]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "abcdef"),
        ("workflowType = 'order'", "abc"),
        ('workflowType = "order"', "abc"),
        ("workflowType = order", "abc"),
        ("workflowType='order'", "abc"),
        ("workflowType != 'order'", "def"),
        ('workflowType = "order.special"', "f"),
        ("status = 'RUNNING'", "a"),
        ("status = 'running'", ""),
        ("workflowId = 'wf-c'", "c"),
        ("startTime > 3000", "def"),
        ("startTime < 3000", "ab"),
        ("endTime > 3000", "cdf"),
        ("endTime < 3000", "b"),
        ("updateTime > 4500", "ef"),
        ("version = 2", "bc"),
        ("version IN (2, 3)", "bce"),
        ("status IN (FAILED,TIMED_OUT)", "cd"),
        ("workflowId IN ('wf-a', \"wf-f\", 'nope')", "af"),
        ("startTime BETWEEN 2000 AND 4000", "bcd"),
        ("endTime BETWEEN 0 AND 4000", "bc"),
        ("correlationId IS NULL", "ce"),
        ("correlationId IS NOT NULL", "abdf"),
        ("endTime IS NULL", "ae"),
        ("endTime IS NOT NULL", "bcdf"),
        ("parentWorkflowId IS NOT NULL", "cdf"),
        ("parentWorkflowId = 'wf-a'", "cd"),
        ("correlationId = 'c-1'", "ad"),
        ("correlationId != 'c-1'", "bcef"),
        ("workflowType STARTS_WITH 'pay'", "de"),
        ("workflowType STARTS_WITH 'order.'", "f"),
        ("correlationId STARTS_WITH 'x*'", "f"),
        ("correlationId STARTS_WITH 'c'", "abd"),
        ("workflowType = 'pay*'", "de"),
        ("workflowType = 'order*'", "abcf"),
        ("workflowType = '*_v2'", "e"),
        ("workflowType != 'order*'", "de"),
        ("correlationId = 'x*y'", "f"),
        ("workflowType = 'order' AND status = 'FAILED'", "c"),
        ("status = 'RUNNING' OR status = 'PAUSED'", "ae"),
        ("workflowType = 'order' and version = 1", "a"),
        # Conductor groups to the right: a AND b OR c means a AND (b OR c).
        ("workflowType = 'order' AND status = 'RUNNING' OR version = 3", "a"),
        ("(workflowType = 'order' AND status = 'RUNNING') OR version = 3", "ae"),
        ("updateTime > 2600 AND (status = 'TIMED_OUT' OR status = 'TERMINATED')", "df"),
        ("((status = 'FAILED'))", "c"),
    ],
)
async def test_search_query_operators(searchable: Store, query: str, expected: str) -> None:
    total, rows = await searchable.search(SearchRequest(query=query, sort="workflowId:ASC"))
    assert [r.workflow_id for r in rows] == ids(expected)
    assert total == len(expected)


@pytest.mark.parametrize(
    ("free_text", "query", "expected"),
    [
        ("*", "", "abcdef"),
        ("", "", "abcdef"),
        ("alice", "", "a"),
        ("BOB", "", "b"),
        ("ship*failed", "", "c"),
        ("c-1", "", "ad"),
        ("wf-d", "", "d"),
        ("payment", "", "de"),
        ("o'brien", "", "f"),
        ("100%", "", "e"),
        ("_ice", "", ""),
        ("shipment alice", "", ""),
        ("shipment failed", "", "c"),
        ("bob", "workflowType = 'order'", "b"),
        ("bob", "workflowType = 'payment'", ""),
    ],
)
async def test_search_free_text(
    searchable: Store, free_text: str, query: str, expected: str
) -> None:
    total, rows = await searchable.search(
        SearchRequest(query=query, free_text=free_text, sort="workflowId")
    )
    assert [r.workflow_id for r in rows] == ids(expected)
    assert total == len(expected)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("startTime:ASC", "abcdef"),
        ("", "fedcba"),  # default: newest first
        ("startTime:DESC", "fedcba"),
        ("workflowType:ASC|startTime:DESC", "cbafde"),
        ("endTime:DESC", "fdcbae"),  # null (0) last when descending
        ("endTime:ASC", "aebcdf"),  # and first when ascending
        ("correlationId:ASC", "ceadbf"),
        ("version", "adfbce"),
        ("version:DESC|workflowId:DESC", "ecbfda"),
        ("status:asc", "bceafd"),
    ],
)
async def test_search_sort(searchable: Store, sort: str, expected: str) -> None:
    _, rows = await searchable.search(SearchRequest(sort=sort))
    assert [r.workflow_id for r in rows] == ids(expected)


async def test_search_pages_with_total_hits(searchable: Store) -> None:
    req = SearchRequest(sort="startTime:ASC", start=2, size=2)
    total, rows = await searchable.search(req)
    assert total == 6
    assert [r.workflow_id for r in rows] == ids("cd")
    total, rows = await searchable.search(SearchRequest(sort="startTime", start=5, size=10))
    assert total == 6
    assert [r.workflow_id for r in rows] == ids("f")
    total, rows = await searchable.search(SearchRequest(sort="startTime", start=10, size=10))
    assert total == 6
    assert rows == []
    total, rows = await searchable.search(
        SearchRequest(query="workflowType = 'order'", sort="startTime:DESC", start=1, size=1)
    )
    assert total == 3
    assert [r.workflow_id for r in rows] == ids("b")


async def test_search_returns_index_fields(searchable: Store) -> None:
    _, rows = await searchable.search(SearchRequest(query="workflowId = 'wf-c'"))
    (row,) = rows
    assert (row.workflow_name, row.workflow_version, row.status) == ("order", 2, "FAILED")
    assert (row.create_time, row.update_time, row.end_time) == (3000, 3300, 3300)
    assert (row.correlation_id, row.parent_workflow_id) == (None, "wf-a")
    assert row.version == 1


@pytest.mark.parametrize(
    ("query", "sort", "message"),
    [
        ("status = ", "", "query: expected a value for status at position 9"),
        ("nope = 1", "", "query: unknown field 'nope' at position 0"),
        ("startTime > 'yesterday'", "", "takes an integer"),
        ("status = 'RUNNING", "", "is never closed"),
        ("", "bogus:ASC", "sort: unknown field 'bogus'"),
        ("", "startTime:UP", "sort: order for startTime must be ASC or DESC"),
    ],
)
async def test_search_rejects_malformed_input(
    searchable: Store, query: str, sort: str, message: str
) -> None:
    with pytest.raises(BadRequest) as info:
        await searchable.search(SearchRequest(query=query, sort=sort))
    assert message in info.value.message


# ====================================================================== queues


async def test_push_pop_ack(store: Store) -> None:
    await store.push("q", "m1", now_ms=T0)
    assert await store.contains("q", "m1") is True
    assert await store.size("q") == 1
    assert await store.pop("q", 5, unack_ms=1000, now_ms=T0) == ["m1"]
    # Popped but unacked: still in the queue, counted, hidden from other pollers.
    assert await store.contains("q", "m1") is True
    assert await store.size("q") == 1
    assert await store.pop("q", 5, unack_ms=1000, now_ms=T0 + 1) == []
    assert await store.ack("q", "m1") is True
    assert await store.ack("q", "m1") is False
    assert await store.contains("q", "m1") is False
    assert await store.size("q") == 0
    # Acked: never delivered again, even after the visibility timeout.
    assert await store.pop("q", 5, unack_ms=1000, now_ms=T0 + 10_000) == []


async def test_pop_order_time_then_priority_then_insertion(store: Store) -> None:
    await store.push("q", "late", delay_ms=50, priority=99, now_ms=T0)
    await store.push("q", "low-1", priority=1, now_ms=T0)
    await store.push("q", "high", priority=9, now_ms=T0)
    await store.push("q", "low-2", priority=1, now_ms=T0)
    await store.push("q", "early", priority=0, now_ms=T0 - 10)
    assert await store.peek("q", 10) == ["early", "high", "low-1", "low-2", "late"]
    assert await store.pop("q", 2, unack_ms=60_000, now_ms=T0) == ["early", "high"]
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0) == ["low-1", "low-2"]
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 50) == ["late"]


async def test_pop_count_is_an_upper_bound(store: Store) -> None:
    for i in range(5):
        await store.push("q", f"m{i}", now_ms=T0)
    assert await store.pop("q", 3, unack_ms=1000, now_ms=T0) == ["m0", "m1", "m2"]
    assert await store.pop("q", 3, unack_ms=1000, now_ms=T0) == ["m3", "m4"]
    assert await store.pop("q", 3, unack_ms=1000, now_ms=T0) == []
    assert await store.pop("empty", 3, unack_ms=1000, now_ms=T0) == []


async def test_delayed_message_is_invisible_until_its_time(store: Store) -> None:
    await store.push("q", "m", delay_ms=5000, now_ms=T0)
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 4999) == []
    assert await store.contains("q", "m") is True
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 5000) == ["m"]


async def test_visibility_timeout_redelivers_unacked_message(store: Store) -> None:
    await store.push("q", "m", now_ms=T0)
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0) == ["m"]
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 999) == []
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 1000) == ["m"]
    # The second delivery got a fresh timeout.
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 1999) == []
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 2000) == ["m"]


async def test_push_of_existing_id_replaces_time_and_priority(store: Store) -> None:
    await store.push("q", "a", priority=0, now_ms=T0)
    await store.push("q", "b", priority=5, now_ms=T0)
    await store.push("q", "a", priority=9, now_ms=T0)
    assert await store.size("q") == 2
    assert await store.peek("q", 10) == ["a", "b"]
    await store.push("q", "a", delay_ms=1000, now_ms=T0)
    assert await store.size("q") == 2
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0) == ["b"]
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 1000) == ["a"]
    # Pushing a popped (unacked) message makes it visible again at the new time.
    await store.push("q", "a", now_ms=T0 + 1000)
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 1000) == ["a"]


async def test_remove_and_postpone(store: Store) -> None:
    await store.push("q", "a", now_ms=T0)
    await store.push("q", "b", now_ms=T0)
    assert await store.remove("q", "a") is True
    assert await store.remove("q", "a") is False
    assert await store.remove("other", "a") is False
    await store.postpone("q", "b", delay_ms=2000, priority=3, now_ms=T0)
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 1999) == []
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 2000) == ["b"]
    # Postponing an unacked message re-schedules it (the decider queue relies on this).
    await store.postpone("q", "b", delay_ms=10, now_ms=T0 + 2000)
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 2010) == ["b"]
    # Postponing an unknown id adds it.
    await store.postpone("q", "new", delay_ms=0, now_ms=T0)
    assert await store.contains("q", "new") is True


async def test_sizes_and_peek(store: Store) -> None:
    assert await store.sizes() == {}
    await store.push("q1", "a", now_ms=T0)
    await store.push("q1", "b", now_ms=T0)
    await store.push("q2", "c", delay_ms=10_000, now_ms=T0)
    await store.push("q3", "d", now_ms=T0)
    await store.ack("q3", "d")
    await store.pop("q1", 1, unack_ms=1000, now_ms=T0)
    # Unacked and delayed messages count; emptied queues are not listed.
    assert await store.sizes() == {"q1": 2, "q2": 1}
    assert await store.size("q2") == 1
    assert await store.size("never") == 0
    assert await store.peek("q2", 10) == ["c"]
    assert await store.peek("q1", 1) == ["b"]  # a is hidden until T0 + 1000
    assert await store.peek("never", 5) == []


async def test_queues_are_independent(store: Store) -> None:
    await store.push("q1", "m", now_ms=T0)
    await store.push("q2", "m", priority=3, now_ms=T0)
    assert await store.pop("q1", 1, unack_ms=1000, now_ms=T0) == ["m"]
    assert await store.contains("q2", "m") is True
    assert await store.pop("q2", 1, unack_ms=1000, now_ms=T0) == ["m"]
    assert await store.ack("q1", "m") is True
    assert await store.contains("q2", "m") is True


async def test_concurrent_poppers_never_share_a_message(store: Store) -> None:
    expected = {f"m{i:03d}" for i in range(60)}
    for m in sorted(expected):
        await store.push("q", m, now_ms=T0)
    got: list[str] = []

    async def popper() -> None:
        while True:
            batch = await store.pop("q", 4, unack_ms=60_000, now_ms=T0)
            if not batch:
                return
            got.extend(batch)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(popper)
    assert len(got) == len(expected)
    assert set(got) == expected


# ====================================================================== workers


async def test_poll_data_keeps_the_last_poll_per_queue_and_domain(store: Store) -> None:
    await store.record_poll(
        PollRecord(queue_name="a", domain=None, worker_id="w1", last_poll_time=1)
    )
    await store.record_poll(
        PollRecord(queue_name="a", domain=None, worker_id="w2", last_poll_time=2)
    )
    await store.record_poll(
        PollRecord(queue_name="a", domain="blue", worker_id="w3", last_poll_time=3)
    )
    await store.record_poll(
        PollRecord(queue_name="b", domain=None, worker_id=None, last_poll_time=4)
    )
    a = await store.poll_data("a")
    assert [(r.domain, r.worker_id, r.last_poll_time) for r in a] == [
        (None, "w2", 2),
        ("blue", "w3", 3),
    ]
    every = await store.poll_data(None)
    assert sorted((r.queue_name, r.domain or "", r.worker_id or "") for r in every) == [
        ("a", "", "w2"),
        ("a", "blue", "w3"),
        ("b", "", ""),
    ]
    assert await store.poll_data("zzz") == []


async def test_exec_logs_keep_order(store: Store) -> None:
    await store.add_logs(
        [
            LogLine(task_id="t1", log="first", created_time=5),
            LogLine(task_id="t2", log="other", created_time=1),
        ]
    )
    await store.add_logs([LogLine(task_id="t1", log="second", created_time=3)])
    await store.add_logs([])
    logs = await store.get_logs("t1")
    assert [(x.log, x.created_time) for x in logs] == [("first", 5), ("second", 3)]
    assert [x.task_id for x in logs] == ["t1", "t1"]
    assert await store.get_logs("none") == []


# ====================================================================== lifecycle


@pytest.fixture(params=backend_params(persistent_only=True))
async def persistent_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with BACKENDS[request.param].open(request) as s:
        yield s


async def test_a_new_store_on_the_same_url_sees_everything(persistent_store: Store) -> None:
    s = persistent_store
    await s.put_task_def("t", b"td")
    await s.put_workflow_def("wf", 2, b"wd")
    await s.put_event_handler("h", b"eh")
    await create(
        s,
        rec("w1", corr="c"),
        added_task_ids=["t1"],
        queue_ops=[push("tasks", "t1", priority=2), push(DECIDER_QUEUE, "w1")],
    )
    await s.commit(Commit(record=rec("w1", body=b"v2", corr="c"), expected_version=1), T0)
    await s.record_poll(
        PollRecord(queue_name="tasks", domain=None, worker_id="w", last_poll_time=7)
    )
    await s.add_logs([LogLine(task_id="t1", log="hi", created_time=1)])
    async with opened(s.url) as again:
        assert await again.get_task_def("t") == b"td"
        assert await again.get_workflow_def("wf", None) == b"wd"
        assert await again.get_event_handler("h") == b"eh"
        loaded = await again.load("w1")
        assert loaded is not None
        assert loaded.body == b"v2"
        assert loaded.version == 2
        assert await again.workflow_id_for_task("t1") == "w1"
        assert await again.ids_by_correlation("order", "c", False) == ["w1"]
        assert await again.pop("tasks", 5, unack_ms=1000, now_ms=T0) == ["t1"]
        assert await again.contains(DECIDER_QUEUE, "w1") is True
        assert [r.worker_id for r in await again.poll_data("tasks")] == ["w"]
        assert [x.log for x in await again.get_logs("t1")] == ["hi"]
        # Versions continue where they were.
        with pytest.raises(VersionConflict):
            await again.commit(Commit(record=rec("w1"), expected_version=1), T0)


def test_open_store_rejects_unknown_schemes() -> None:
    with pytest.raises(BadRequest, match="unknown store URL 'mysql://x'"):
        open_store("mysql://x")
