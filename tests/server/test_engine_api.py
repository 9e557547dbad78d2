"""The rest of the Engine facade the REST layer uses: lookups, logs, search, task
updates by reference name, retry / rerun / skip / reset callbacks."""

from __future__ import annotations

import pytest
import trio

from core.enums import TaskStatus, WorkflowStatus
from core.errors import BadRequest, NotFound
from core.models import (
    RerunWorkflowRequest,
    SkipTaskRequest,
    StartWorkflowRequest,
    TaskExecLogEntry,
)
from core.store import SearchRequest
from tests.server.engine_helpers import (
    register,
    result,
    running_engine,
    simple,
    start,
    task_def,
    wf_def,
)


async def test_lookups_logs_and_search(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("looked", [simple("a", "look_a")]))
        first = await start(engine, "looked", {"who": "alice"}, correlation_id="c1")
        second = await start(engine, "looked", {"who": "bob"}, correlation_id="c1")
        assert sorted(await engine.running_ids("looked", 1)) == sorted([first, second])

        [task] = await engine.poll("look_a", worker_id="w")
        assert (await engine.get_task(task.task_id)).status is TaskStatus.IN_PROGRESS
        with pytest.raises(NotFound):
            await engine.get_task("nope")
        update = result(task, output_data={"done": 1})
        update.logs = [TaskExecLogEntry(log="step 1", created_time=1_800_000_000)]
        await engine.update_task(update)
        await engine.add_task_log(task.task_id, "step 2")
        logs = await engine.get_task_logs(task.task_id)
        assert [x.log for x in logs] == ["step 1", "step 2"]
        assert logs[0].created_time == 1_800_000_000_000  # SDK seconds -> ms

        finished = task.workflow_instance_id
        running = await engine.correlated("looked", "c1", include_closed=False, include_tasks=False)
        assert [w.workflow_id for w in running] == [first if finished == second else second]
        both = await engine.correlated("looked", "c1", include_closed=True, include_tasks=True)
        assert {w.workflow_id for w in both} == {first, second}

        found = await engine.search(SearchRequest(query="status = 'COMPLETED'"))
        assert found.total_hits == 1
        summary = found.results[0]
        assert summary.workflow_id == finished
        assert summary.workflow_type == "looked"
        assert summary.start_time.endswith("Z")
        assert '"who"' in summary.input
        full = await engine.search_v2(SearchRequest(free_text="bob"))
        assert [w.workflow_id for w in full.results] == [second]
        assert await engine.queue_sizes() == {"look_a": 1}
        assert await engine.queue_size("look_a") == 1


async def test_update_task_by_ref(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("by_ref", [simple("a", "ref_a"), simple("b", "ref_b")]))
        wf_id = await start(engine, "by_ref")
        # Not even polled yet: Conductor lets an update by ref name complete it anyway.
        task_id = await engine.update_task_by_ref(wf_id, "a", "COMPLETED", {"v": 1}, "w")
        workflow = await engine.get_workflow(wf_id)
        assert workflow.tasks[0].task_id == task_id
        assert workflow.tasks[0].status is TaskStatus.COMPLETED
        assert workflow.tasks[0].output_data == {"v": 1}
        assert await engine.queue_size("ref_a") == 0
        assert await engine.update_task_by_ref(wf_id, "a", "COMPLETED") is None  # none pending
        with pytest.raises(BadRequest, match="status"):
            await engine.update_task_by_ref(wf_id, "b", "DONE")


async def test_retry_rerun_skip(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("fragile", retryCount=0),
            wf_def("fixable", [simple("f", "fragile"), simple("g", "after_f")]),
        )
        wf_id = await start(engine, "fixable")
        with pytest.raises(NotFound, match="still running"):
            await engine.retry(wf_id)
        [task] = await engine.poll("fragile")
        await engine.update_task(result(task, "FAILED", reasonForIncompletion="bad input"))
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.FAILED

        await engine.retry(wf_id)
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.RUNNING
        [again] = await engine.poll("fragile")
        assert again.task_id != task.task_id
        await engine.update_task(result(again))
        [g] = await engine.poll("after_f")
        await engine.update_task(result(g))
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.COMPLETED

        assert await engine.rerun(wf_id, RerunWorkflowRequest(workflow_input={"n": 2})) == wf_id
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.RUNNING
        assert workflow.input == {"n": 2}
        await engine.skip_task(wf_id, "g", SkipTaskRequest(task_output={"skipped": True}))
        [f] = await engine.poll("fragile")
        await engine.update_task(result(f))
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert [t.status for t in workflow.tasks][-1] is TaskStatus.SKIPPED
        assert await engine.poll("after_f") == []


async def test_reset_callbacks_and_repair(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("later", [simple("a", "call_back")]))
        wf_id = await start(engine, "later")
        [task] = await engine.poll("call_back")
        # The worker checks in: "call me again in an hour".
        await engine.update_task(result(task, "IN_PROGRESS", callbackAfterSeconds=3600))
        assert await engine.poll("call_back") == []
        await engine.reset_callbacks(wf_id)
        [again] = await engine.poll("call_back")
        assert again.task_id == task.task_id
        assert again.poll_count == 2
        assert await engine.verify_and_repair(wf_id) is False  # nothing was missing


async def test_signal_reaches_into_sub_workflows(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        wait = {"name": "wait", "taskReferenceName": "w", "type": "WAIT"}
        sub = {
            "name": "sub",
            "taskReferenceName": "sub",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {"name": "inner"},
        }
        await register(engine, wf_def("inner", [wait]), wf_def("outer", [sub]))
        outer = await start(engine, "outer")
        task = await engine.signal(outer, "COMPLETED", {"approved": True})
        assert task is not None
        assert task.task_type == "WAIT"
        assert task.output_data == {"approved": True}
        workflow = await engine.get_workflow(outer)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert await engine.signal(outer, "COMPLETED") is None


async def test_pending_tasks_in_queue(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("pend", [simple("a", "pending_t")]))
        ids = [await start(engine, "pend") for _ in range(3)]
        pending = await engine.pending_tasks("pending_t", start=1, count=5)
        assert [t.workflow_instance_id for t in pending] == ids[1:]


async def test_execute_workflow_waits_for_the_end(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("sync_run", [simple("a", "exec_a"), simple("b", "exec_b")]))

        async def worker(task_type: str) -> None:
            [task] = await engine.poll(task_type, timeout_ms=5_000)
            await engine.update_task(result(task, output_data={"by": task_type}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker, "exec_a")
            nursery.start_soon(worker, "exec_b")
            workflow = await engine.execute_workflow(
                StartWorkflowRequest(name="sync_run", input={}), wait_for_seconds=30
            )
        assert workflow.status is WorkflowStatus.COMPLETED

        # Waiting for one task only; then the timeout case.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker, "exec_a")
            partial = await engine.execute_workflow(
                StartWorkflowRequest(name="sync_run", input={}),
                wait_until_task_refs=["a"],
                wait_for_seconds=30,
            )
        assert partial.status is WorkflowStatus.RUNNING
        assert partial.tasks[0].status is TaskStatus.COMPLETED
        before = trio.current_time()
        late = await engine.execute_workflow(
            StartWorkflowRequest(name="sync_run", input={}), wait_for_seconds=2
        )
        assert late.status is WorkflowStatus.RUNNING
        assert trio.current_time() - before == pytest.approx(2)
