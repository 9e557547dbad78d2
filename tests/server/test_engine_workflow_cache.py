"""The executor's cache of committed workflows: used on the write path, never trusted
over the store when another engine (another process) wrote in between, and never
changed by a later decide (which works on a copy)."""

from __future__ import annotations

import msgspec
import pytest
import trio

from core.decisions import DecideNow
from core.enums import TaskStatus, WorkflowStatus
from core.errors import BadRequest
from core.models import Workflow
from core.store import WorkflowRecord
from server.engine.persistence import encode_body, to_record
from server.engine.workflow_cache import CacheCorrupted, WorkflowCache
from server.stores.memory import MemoryStore
from tests.server.engine_helpers import (
    RecordingStore,
    register,
    result,
    running_engine,
    simple,
    start,
    task_def,
    wf_def,
)


def test_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    def record(wf_id: str) -> WorkflowRecord:
        return WorkflowRecord(
            workflow_id=wf_id,
            workflow_name="w",
            workflow_version=1,
            status="RUNNING",
            create_time=0,
            update_time=0,
            version=1,
        )

    cache = WorkflowCache(limit=2)
    for wf_id in ("a", "b"):
        cache.put(record(wf_id))
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put(record("c"))
    assert cache.get("b") is None
    assert [cache.get(x) is not None for x in ("a", "c")] == [True, True]
    cache.drop("a")
    assert cache.get("a") is None
    assert len(cache) == 1


async def test_poll_and_update_do_not_reload_what_this_engine_committed(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = RecordingStore()
    async with running_engine(store) as engine:
        await register(engine, wf_def("seq", [simple("a", "t"), simple("b", "t")]))
        wf_id = await start(engine, "seq")
        loads = store.loads
        [task] = await engine.poll("t")
        # The poll's group commit cached the committed object too: no decode next time.
        entry = engine.executor.cache.entry(wf_id)
        assert entry is not None
        assert entry[1] is not None
        assert entry[1].tasks[0].status is TaskStatus.IN_PROGRESS
        nxt = await engine.update_task_v2(result(task))
        assert nxt is not None
        await engine.update_task(result(nxt))
        assert store.loads == loads  # every decide started from the cached record
        ended = engine.executor.cache.entry(wf_id)
        assert ended is not None
        assert ended[1] is None
        workflow = await engine.get_workflow(wf_id)  # API reads still go to the store
        assert store.loads == loads + 1
        assert workflow.status is WorkflowStatus.COMPLETED


async def test_stale_cache_loses_the_commit_and_the_store_copy_decides(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore()
    async with running_engine(store) as engine_a, running_engine(store) as engine_b:
        await register(engine_a, wf_def("seq", [simple("a", "t"), simple("b", "t")]))
        engine_b.metadata_changed()
        wf_id = await start(engine_a, "seq")
        [task] = await engine_a.poll("t")  # engine_a caches the IN_PROGRESS task
        await engine_b.update_task(result(task, output_data={"by": "b"}))
        # engine_a's copy still shows the task running: its commit must conflict, and the
        # store's copy (task done) makes the late update an ignored one.
        assert await engine_a.update_task_v2(result(task, output_data={"by": "a"})) is None
        assert engine_a.executor.conflicts == 1
        workflow = await engine_a.get_workflow(wf_id)
        assert [t.status for t in workflow.tasks] == [TaskStatus.COMPLETED, TaskStatus.SCHEDULED]
        assert workflow.tasks[0].output_data == {"by": "b"}


async def test_a_guard_refusing_the_cached_copy_is_asked_again_with_the_store_copy(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore()
    async with running_engine(store) as engine_a, running_engine(store) as engine_b:
        await register(engine_a, task_def("t", retryCount=0), wf_def("one", [simple("a", "t")]))
        engine_b.metadata_changed()
        wf_id = await start(engine_a, "one")
        [task] = await engine_a.poll("t")
        await engine_a.update_task(result(task, "FAILED"))  # engine_a caches FAILED
        await engine_b.retry(wf_id)  # a new task, unknown to engine_a's cached copy
        [again] = await engine_b.poll("t")
        # On the cached copy the task does not exist (NotFound): the store's copy has it.
        await engine_a.update_task(result(again))
        workflow = await engine_a.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert engine_a.executor.conflicts == 0  # re-checked before deciding, not after


async def test_a_claim_never_drops_a_message_on_a_stale_cached_copy(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore()
    async with running_engine(store) as engine_a, running_engine(store) as engine_b:
        await register(engine_a, wf_def("one", [simple("a", "t")]))
        engine_b.metadata_changed()
        wf_id = await start(engine_a, "one")
        [task] = await engine_a.poll("t")  # engine_a caches the task IN_PROGRESS
        # engine_b puts it back (SCHEDULED, re-queued): engine_a's copy is now stale.
        await engine_b.update_task(result(task, "IN_PROGRESS"))
        [again] = await engine_a.poll("t", worker_id="w2")
        assert again.task_id == task.task_id
        assert again.worker_id == "w2"
        workflow = await engine_a.get_workflow(wf_id)
        assert workflow.tasks[0].status is TaskStatus.IN_PROGRESS


async def test_a_later_decide_never_changes_what_an_earlier_call_got(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = RecordingStore()
    async with running_engine(store) as engine:
        await register(
            engine,
            wf_def(
                "seq",
                [
                    simple("a", "t"),
                    simple("b", "t", inputParameters={"prev": "${a.output}"}),
                    simple("c", "t"),
                ],
            ),
        )
        wf_id = await start(engine, "seq", {"x": {"deep": [1]}})
        [task] = await engine.poll("t")
        second = await engine.update_task_v2(result(task, output_data={"n": {"k": 1}}))
        assert second is not None
        committed = engine.executor.cache.entry(wf_id)
        assert committed is not None
        assert committed[1] is not None
        before = encode_body(committed[1])
        loads = store.loads
        snapshot = msgspec.json.encode(second)
        third = await engine.update_task_v2(result(second, output_data={"m": 2}))
        assert third is not None
        # The task handed out earlier and the workflow committed earlier are untouched
        # by the decide that followed (it worked on a copy), and no load was needed.
        assert msgspec.json.encode(second) == snapshot
        assert second.status is TaskStatus.IN_PROGRESS
        assert encode_body(committed[1]) == before
        assert store.loads == loads
        after = engine.executor.cache.entry(wf_id)
        assert after is not None
        assert after[1] is not committed[1]


async def test_verify_mode_catches_a_committed_workflow_changed_in_place(
    autojump_clock: trio.abc.Clock,
) -> None:
    assert WorkflowCache.verify  # tests/conftest.py turns it on
    async with running_engine(MemoryStore()) as engine:
        await register(engine, wf_def("seq", [simple("a", "t"), simple("b", "t")]))
        wf_id = await start(engine, "seq", {"x": {"deep": [1]}})
        entry = engine.executor.cache.entry(wf_id)
        assert entry is not None
        assert entry[1] is not None
        entry[1].input["x"]["deep"].append(2)  # an aliasing bug would do this
        with pytest.raises(CacheCorrupted):
            await engine.poll("t")


async def test_a_failed_decide_on_the_cached_copy_leaves_the_committed_object_alone(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine(MemoryStore()) as engine:
        await register(engine, wf_def("seq", [simple("a", "t"), simple("b", "t")]))
        wf_id = await start(engine, "seq")
        [task] = await engine.poll("t")
        await engine.update_task(result(task))
        entry = engine.executor.cache.entry(wf_id)
        assert entry is not None
        assert entry[1] is not None
        before = encode_body(entry[1])

        def refuse(workflow: Workflow) -> bool:
            workflow.tasks[0].output_data["edited"] = True  # on the copy it was given
            workflow.input["edited"] = True
            raise BadRequest("no")

        with pytest.raises(BadRequest):
            await engine.apply(wf_id, DecideNow(), guard=refuse)
        assert encode_body(entry[1]) == before
        workflow = await engine.get_workflow(wf_id)
        assert "edited" not in workflow.input
        assert "edited" not in workflow.tasks[0].output_data


async def test_starts_share_one_decoded_definition_until_it_changes(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine(MemoryStore()) as engine:
        await register(engine, wf_def("one", [simple("a", "t")]))
        first = await engine.get_workflow(await start(engine, "one"))
        second = await engine.get_workflow(await start(engine, "one"))
        shared = await engine.metadata.workflow_def("one", None)
        assert shared is not None
        assert first.workflow_definition == shared == second.workflow_definition
        assert await engine.metadata.workflow_def("one", 1) is shared
        # A new version (new stored bytes) is used at once, by the next start.
        await register(engine, wf_def("one", [simple("a", "t"), simple("b", "t")], version=2))
        newer = await engine.metadata.workflow_def("one", None)
        assert newer is not shared
        assert newer is not None
        assert len(newer.tasks) == 2
        third = await engine.get_workflow(await start(engine, "one"))
        assert third.workflow_version == 2


def test_only_the_latest_committed_workflows_keep_their_objects() -> None:
    cache = WorkflowCache(limit=3, objects_limit=2)
    records = {}
    for wf_id in ("a", "b", "c"):
        workflow = Workflow(workflow_id=wf_id, workflow_name="w", workflow_version=1)
        records[wf_id] = to_record(workflow, version=1)
        cache.put(records[wf_id], workflow)
    assert [cache.entry(x)[1] is not None for x in "abc"] == [False, True, True]  # type: ignore[index]
    assert all(cache.entry(x)[0] is records[x] for x in "abc")  # type: ignore[index]
    cache.put(records["b"])  # a commit without its object replaces the old object too
    assert cache.entry("b")[1] is None  # type: ignore[index]
    cache.drop("c")
    assert cache.entry("c") is None
