"""The one contract suite every store backend passes (core/store.py's rules): metadata,
commits and executions, restart. Search is in test_store_contract_search.py, queues and
worker data in test_store_contract_queues.py.

Rules: backend-agnostic. Backends come from tests/server/store_backends.py; a test only
uses the core.store.Store interface. Time is always passed as `now_ms`: no sleeps. Expected
results are written out by hand, never computed with the code under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
import trio

from core.errors import BadRequest, VersionConflict
from core.store import (
    DECIDER_QUEUE,
    Commit,
    LogLine,
    PollRecord,
    QueueOp,
    Store,
    WorkflowRecord,
)
from server.stores import open_store
from tests.server.contract_support import T0, create, open_backend, push, rec
from tests.server.store_backends import backend_params, opened


@pytest.fixture(params=backend_params())
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with open_backend(request) as s:
        yield s


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
    loaded_by: list[str] = []
    both_loaded = trio.Event()

    async def writer(name: str) -> None:
        loaded = await store.load("w1")
        assert loaded is not None
        # A barrier: both writers hold version 1 before either commits, on any backend
        # (a networked store may answer one load before the other has even been sent).
        loaded_by.append(name)
        if len(loaded_by) == 2:
            both_loaded.set()
        await both_loaded.wait()
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


# ====================================================================== lifecycle


def _with_definition(record: WorkflowRecord, ref: str, definition: bytes) -> WorkflowRecord:
    return msgspec.structs.replace(record, definition_ref=ref, definition=definition)


async def test_definitions_travel_beside_bodies_and_come_back_on_load(store: Store) -> None:
    d1, d2 = b"\x00definition one\xff", b"definition two"
    await create(store, _with_definition(rec("w1"), "ref1", d1))
    await create(store, _with_definition(rec("w2"), "ref1", d1))  # shares ref1
    await create(store, _with_definition(rec("w3"), "ref2", d2))
    await create(store, rec("w4"))  # no definition
    # An update keeps (or moves) its ref; the body never holds the definition.
    update = _with_definition(rec("w2", body=b"v2"), "ref2", d2)
    assert await store.commit(Commit(record=update, expected_version=1), T0) == 2
    loaded = await store.load_many(["w1", "w2", "w3", "w4"])
    assert [(r.definition_ref, r.definition, r.body) for r in loaded if r] == [
        ("ref1", d1, b'{"n":0}'),
        ("ref2", d2, b"v2"),
        ("ref2", d2, b'{"n":0}'),
        ("", b"", b'{"n":0}'),
    ]
    # A conflicting commit writes nothing, its definition included.
    lost = _with_definition(rec("w1", body=b"x"), "ref3", b"three")
    with pytest.raises(VersionConflict):
        await store.commit(Commit(record=lost, expected_version=5), T0)
    only = await store.load("w1")
    assert only is not None
    assert (only.definition_ref, only.definition) == ("ref1", d1)


@pytest.fixture(params=backend_params(persistent_only=True))
async def persistent_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with open_backend(request) as s:
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
    await create(s, _with_definition(rec("w2"), "ref9", b"def nine"))
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
        with_def = await again.load("w2")
        assert with_def is not None
        assert (with_def.definition_ref, with_def.definition) == ("ref9", b"def nine")
        # Versions continue where they were.
        with pytest.raises(VersionConflict):
            await again.commit(Commit(record=rec("w1"), expected_version=1), T0)


def test_open_store_rejects_unknown_schemes() -> None:
    with pytest.raises(BadRequest, match="unknown store URL 'mysql://x'"):
        open_store("mysql://x")
