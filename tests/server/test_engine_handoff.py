"""update-v2's direct hand-off (server/engine/handoff.py): the task an update schedules in
the worker's own queue is handed to that worker in the update's commit; everything else
(limits, other domains, paused or ended workflows, sub-workflows) goes through the queue
as before."""

from __future__ import annotations

from typing import Any

import trio
import trio.lowlevel

from core.enums import TaskStatus, WorkflowStatus
from core.models import Task
from server.engine import Engine
from tests.server.engine_helpers import (
    RecordingStore,
    YieldingStore,
    fork_join,
    register,
    result,
    running_engine,
    simple,
    start,
    task_def,
    wf_def,
)


def chain(name: str, steps: int, task_type: str, **extra: Any) -> Any:
    return wf_def(name, [simple(f"s{i}", task_type) for i in range(steps)], **extra)


async def stored_task(engine: Engine, task: Task) -> Task:
    workflow = await engine.get_workflow(task.workflow_instance_id)
    [found] = [t for t in workflow.tasks if t.task_id == task.task_id]
    return found


async def test_sequential_chain_is_one_commit_per_update_v2(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = RecordingStore()
    async with running_engine(store) as engine:
        await register(engine, chain("seq", 5, "seq_t"))
        wf_id = await start(engine, "seq")
        [task] = await engine.poll("seq_t", worker_id="w1")
        generation = engine.waiters.generation("seq_t")
        commits, pops, pushed = store.commits, len(store.pops), len(store.pushed)
        refs = []
        while True:
            before = store.commits
            nxt = await engine.update_task_v2(result(task, workerId="w1"))
            assert store.commits == before + 1  # the update and the claim: one commit
            if nxt is None:
                break
            assert nxt.status is TaskStatus.IN_PROGRESS
            assert nxt.worker_id == "w1"
            assert nxt.poll_count == 1
            assert (await stored_task(engine, nxt)).status is TaskStatus.IN_PROGRESS
            # Never queued: no message, no waiter woken, no owner entry.
            assert engine.task_owners.get(nxt.task_id) is None
            refs.append(nxt.reference_task_name)
            task = nxt
        assert refs == ["s1", "s2", "s3", "s4"]
        assert store.commits - commits == 5
        # Only the last update (nothing left to hand off) polled; nothing was pushed.
        assert store.pops[pops:] == ["seq_t"]
        assert store.pushed[pushed:] == []
        assert engine.waiters.generation("seq_t") == generation
        assert await engine.queue_size("seq_t") == 0
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.COMPLETED


async def test_update_v2_prefers_its_own_workflow_over_older_queued_tasks(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(engine, chain("two", 2, "aff_t"))
        mine = await start(engine, "two")
        [task] = await engine.poll("aff_t", worker_id="w1")
        older = await start(engine, "two")  # queued before this workflow's next task
        nxt = await engine.update_task_v2(result(task, workerId="w1"))
        assert nxt is not None
        assert nxt.workflow_instance_id == mine
        assert nxt.reference_task_name == "s1"
        [other] = await engine.poll("aff_t", worker_id="w2")
        assert other.workflow_instance_id == older


async def test_fork_hands_off_one_task_and_queues_the_rest(
    autojump_clock: trio.abc.Clock,
) -> None:
    fork, join = fork_join([[simple(f"p{i}", "fork_t")] for i in range(3)], ["p0", "p1", "p2"])
    store = RecordingStore()
    async with running_engine(store) as engine:
        await register(engine, wf_def("forked", [simple("first", "fork_t"), fork, join]))
        wf_id = await start(engine, "forked")
        [first] = await engine.poll("fork_t")
        pushed = len(store.pushed)
        nxt = await engine.update_task_v2(result(first, workerId="w1"))
        assert nxt is not None
        assert nxt.reference_task_name == "p0"  # the first scheduled one
        queued = {task_id for _, task_id in store.pushed[pushed:]}
        assert nxt.task_id not in queued
        assert len(queued) == 2
        rest = await engine.poll("fork_t", count=5)
        assert sorted(t.reference_task_name for t in rest) == ["p1", "p2"]
        for task in [nxt, *rest]:
            await engine.update_task(result(task))
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.COMPLETED


async def test_rate_limit_still_postpones_the_next_task(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("rated_t", rateLimitPerFrequency=1, rateLimitFrequencyInSeconds=60),
            chain("rated", 2, "rated_t"),
        )
        wf_id = await start(engine, "rated")
        [task] = await engine.poll("rated_t")
        assert await engine.update_task_v2(result(task)) is None  # one start per minute
        workflow = await engine.get_workflow(wf_id)
        assert workflow.tasks[1].status is TaskStatus.SCHEDULED
        assert await engine.poll("rated_t") == []
        polled: list[Task | None] = [*await engine.poll("rated_t", timeout_ms=5_000)]
        [later] = polled or [None]
        while later is None:
            await trio.sleep(5)
            got = await engine.poll("rated_t")
            later = got[0] if got else None
        assert later.reference_task_name == "s1"
        assert trio.current_time() >= 60


async def test_concurrent_exec_limit_is_counted_for_a_handed_off_task(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("limit_t", concurrentExecLimit=2),
            chain("limited", 2, "limit_t"),
        )
        await start(engine, "limited")
        await start(engine, "limited")
        tasks = await engine.poll("limit_t", count=2)
        assert len(tasks) == 2  # both slots taken
        # The first update frees a slot only once committed: no hand-off, the poll
        # after the commit gives the worker the next task.
        nxt = await engine.update_task_v2(result(tasks[0]))
        assert nxt is not None
        assert nxt.status is TaskStatus.IN_PROGRESS
        await start(engine, "limited")
        assert await engine.poll("limit_t") == []  # still two in flight, one of them handed


async def test_a_domain_that_changed_falls_back_to_the_queue(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(engine, chain("dom", 2, "dom_t"))
        assert await engine.poll("dom_t", domain="blue") == []  # "blue" is active now
        wf_id = await start(engine, "dom", task_to_domain={"dom_t": "blue,NO_DOMAIN"})
        [task] = await engine.poll("dom_t", domain="blue")
        assert task.domain == "blue"
        await trio.sleep(11)  # no poll from "blue" for longer than active_worker_ms
        assert await engine.update_task_v2(result(task)) is None
        [nxt] = await engine.poll("dom_t")  # scheduled without a domain
        assert nxt.workflow_instance_id == wf_id
        assert nxt.reference_task_name == "s1"
        assert not isinstance(nxt.domain, str)  # no domain


async def test_the_same_domain_is_handed_off(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, chain("dom", 2, "dom_t"))
        await start(engine, "dom", task_to_domain={"dom_t": "blue"})
        assert await engine.poll("dom_t") == []
        [task] = await engine.poll("dom_t", domain="blue", worker_id="w1")
        nxt = await engine.update_task_v2(result(task, workerId="w1"))
        assert nxt is not None
        assert nxt.domain == "blue"
        assert nxt.status is TaskStatus.IN_PROGRESS
        assert await engine.queue_size("dom_t", "blue") == 0


async def test_a_paused_workflow_hands_nothing_off(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, chain("paused", 2, "pause_t"))
        wf_id = await start(engine, "paused")
        [task] = await engine.poll("pause_t")
        await engine.pause(wf_id)
        assert await engine.update_task_v2(result(task)) is None
        workflow = await engine.get_workflow(wf_id)
        assert all(t.status is not TaskStatus.IN_PROGRESS for t in workflow.tasks)
        await engine.resume(wf_id)
        [nxt] = await engine.poll("pause_t")
        assert nxt.reference_task_name == "s1"


async def test_an_ended_workflow_hands_nothing_off(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, chain("ended", 2, "end_t"))
        wf_id = await start(engine, "ended")
        [task] = await engine.poll("end_t")
        await engine.terminate(wf_id, "stop")
        assert await engine.update_task_v2(result(task)) is None
        workflow = await engine.get_workflow(wf_id)
        assert [t.reference_task_name for t in workflow.tasks] == ["s0"]


async def test_a_task_delayed_by_the_update_is_not_handed_off(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("retry_t", retryCount=1, retryDelaySeconds=5),
            chain("retried", 1, "retry_t"),
        )
        wf_id = await start(engine, "retried")
        [task] = await engine.poll("retry_t")
        assert await engine.update_task_v2(result(task, "FAILED")) is None
        [again] = await engine.poll("retry_t", timeout_ms=5_000)
        assert again.retried_task_id == task.task_id
        assert again.workflow_instance_id == wf_id


async def test_an_immediate_retry_is_handed_off(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("retry_now_t", retryCount=1, retryDelaySeconds=0),
            chain("retried_now", 1, "retry_now_t"),
        )
        await start(engine, "retried_now")
        [task] = await engine.poll("retry_now_t")
        again = await engine.update_task_v2(result(task, "FAILED", workerId="w1"))
        assert again is not None
        assert again.retried_task_id == task.task_id
        assert again.status is TaskStatus.IN_PROGRESS


async def test_sub_workflow_tasks_behave_as_before(autojump_clock: trio.abc.Clock) -> None:
    sub = {
        "name": "child",
        "taskReferenceName": "sub",
        "type": "SUB_WORKFLOW",
        "subWorkflowParam": {"name": "child", "version": 1},
    }
    async with running_engine() as engine:
        await register(
            engine,
            chain("child", 2, "sub_t"),
            wf_def("parent", [sub, simple("after", "sub_t")]),
        )
        parent_id = await start(engine, "parent")
        [first] = await engine.poll("sub_t")
        second = await engine.update_task_v2(result(first))
        assert second is not None  # handed off inside the child
        assert second.workflow_instance_id == first.workflow_instance_id
        # The child's end reaches the parent after the child's commit: the parent's
        # next task comes from the queue, by the poll.
        after = await engine.update_task_v2(result(second))
        assert after is not None
        assert after.workflow_instance_id == parent_id
        assert after.reference_task_name == "after"
        assert await engine.update_task_v2(result(after)) is None
        assert (await engine.get_workflow(parent_id)).status is WorkflowStatus.COMPLETED


async def test_a_lost_answer_is_redelivered_after_the_response_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("lost_t", responseTimeoutSeconds=10, retryCount=1, retryDelaySeconds=0),
            chain("lost", 2, "lost_t"),
        )
        await start(engine, "lost")
        [task] = await engine.poll("lost_t")
        handed = await engine.update_task_v2(result(task))
        assert handed is not None  # ... and the worker never got the answer
        polled: list[Task | None] = [*await engine.poll("lost_t", timeout_ms=5_000)]
        [again] = polled or [None]
        while again is None:
            await trio.sleep(5)
            got = await engine.poll("lost_t")
            again = got[0] if got else None
        assert again.retried_task_id == handed.task_id
        assert (await stored_task(engine, handed)).status is TaskStatus.TIMED_OUT


async def test_a_task_handed_to_a_cancelled_caller_is_given_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(engine, chain("gone", 2, "gone_t"))
        wf_id = await start(engine, "gone")
        [task] = await engine.poll("gone_t")
        with trio.CancelScope() as scope:
            scope.cancel()  # the caller is gone before the (shielded) update even starts
            await engine.update_task_v2(result(task, workerId="w1"))
        workflow = await engine.get_workflow(wf_id)
        assert [t.status for t in workflow.tasks] == [TaskStatus.COMPLETED, TaskStatus.SCHEDULED]
        [nxt] = await engine.poll("gone_t", worker_id="w2")
        assert nxt.reference_task_name == "s1"
        assert nxt.worker_id == "w2"


async def test_racing_update_v2s_hand_each_task_out_once(autojump_clock: trio.abc.Clock) -> None:
    fork, join = fork_join(
        [[simple(f"p{i}", "race_t"), simple(f"q{i}", "race_t")] for i in range(6)],
        [f"q{i}" for i in range(6)],
    )
    store = YieldingStore()
    async with running_engine(store) as engine_a, running_engine(store) as engine_b:
        await register(engine_a, wf_def("race", [fork, join]))
        await register(engine_b, wf_def("race", [fork, join]))
        wf_id = await start(engine_a, "race")
        tasks = await engine_a.poll("race_t", count=6)
        assert len(tasks) == 6
        handed: list[Task] = []

        async def finish(engine: Engine, task: Task) -> None:
            nxt = await engine.update_task_v2(result(task))
            if nxt is not None:
                handed.append(nxt)

        async with trio.open_nursery() as nursery:
            for i, task in enumerate(tasks):
                nursery.start_soon(finish, engine_a if i % 2 else engine_b, task)
        assert engine_a.executor.conflicts + engine_b.executor.conflicts > 0
        # Every second task was handed to exactly one caller (or is still queued).
        queued = await engine_a.poll("race_t", count=10)
        seconds = [t.reference_task_name for t in handed + queued]
        assert sorted(seconds) == [f"q{i}" for i in range(6)]
        for task in handed + queued:
            assert (await stored_task(engine_a, task)).status is TaskStatus.IN_PROGRESS
            await engine_a.update_task(result(task))
        assert (await engine_a.get_workflow(wf_id)).status is WorkflowStatus.COMPLETED
