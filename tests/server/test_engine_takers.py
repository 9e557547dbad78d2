"""Direct hand-off from a start to a waiting poll (server/engine/takers.py): the start's own
commit claims the task for the waiting worker; nothing is queued, popped or claimed later;
limits still apply; a failed commit or a poll that went away loses no task."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from core.enums import TaskStatus
from core.models import Task
from core.store import Commit
from server.engine.takers import Takers
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


async def test_a_start_hands_its_task_to_a_waiting_poll_in_its_own_commit(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = RecordingStore()
    async with running_engine(store) as engine:
        await register(engine, wf_def("w", [simple("a", "direct")]))
        got: list[Task] = []

        async def waiting_worker() -> None:
            got.extend(await engine.poll("direct", worker_id="w1", count=3, timeout_ms=5_000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting_worker)
            await trio.testing.wait_all_tasks_blocked()
            store.pops.clear()
            commits = store.commits
            wf_id = await start(engine, "w")
        [task] = got
        assert task.status is TaskStatus.IN_PROGRESS
        assert task.worker_id == "w1"
        assert task.workflow_instance_id == wf_id
        assert store.pops == []  # never queued, so never popped
        assert store.commits == commits + 1  # the start and the claim in one commit
        assert store.pushed == []  # the task never entered its queue
        assert await engine.queue_size("direct") == 0
        stored = await engine.get_workflow(wf_id)
        assert stored.tasks[0].status is TaskStatus.IN_PROGRESS
        assert stored.tasks[0].worker_id == "w1"


async def test_a_poll_is_handed_at_most_its_count(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "two")]))
        got: list[list[Task]] = []

        async def waiting_worker() -> None:
            got.append(await engine.poll("two", worker_id="w1", count=1, timeout_ms=5_000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting_worker)
            await trio.testing.wait_all_tasks_blocked()
            first = await start(engine, "w")
            second = await start(engine, "w")
        assert [[t.workflow_instance_id for t in tasks] for tasks in got] == [[first]]
        # The second start found no room: its task was queued as usual.
        assert await engine.queue_size("two") == 1
        [queued] = await engine.poll("two", worker_id="w2", timeout_ms=0)
        assert queued.workflow_instance_id == second


async def test_a_task_over_its_concurrency_limit_is_queued_not_handed(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("limited", concurrentExecLimit=1),
            wf_def("w", [simple("a", "limited")]),
        )
        await start(engine, "w")
        [busy] = await engine.poll("limited", worker_id="w1", timeout_ms=0)
        got: list[Task] = []

        async def waiting_worker() -> None:
            got.extend(await engine.poll("limited", worker_id="w2", timeout_ms=1_000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting_worker)
            await trio.testing.wait_all_tasks_blocked()
            second = await start(engine, "w")
        assert got == []  # one is running, the limit is one
        assert await engine.queue_size("limited") == 1
        workflow = await engine.get_workflow(second)
        assert workflow.tasks[0].status is TaskStatus.SCHEDULED
        assert busy.status is TaskStatus.IN_PROGRESS


async def test_a_start_that_is_not_committed_hands_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "keyed")]))
        got: list[Task] = []

        async def waiting_worker() -> None:
            got.extend(await engine.poll("keyed", worker_id="w1", timeout_ms=5_000))

        keyed: dict[str, Any] = {"idempotency_key": "k", "idempotency_strategy": "RETURN_EXISTING"}
        first = await start(engine, "w", **keyed)
        [task] = (await engine.get_workflow(first)).tasks
        assert await engine.store.remove("keyed", task.task_id)  # so the poll below waits
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting_worker)
            await trio.testing.wait_all_tasks_blocked()
            # Same key: the create finds the id taken and commits nothing; its reservation
            # is released, so the poll is still open and gets the queued task.
            again = await start(engine, "w", **keyed)
            assert again == first
            await trio.testing.wait_all_tasks_blocked()
            assert got == []
            assert engine.takers.has_open("keyed")
            await engine.store.push("keyed", task.task_id, now_ms=engine.now_ms())
            engine.waiters.notify("keyed")
        [polled] = got
        assert polled.task_id == task.task_id


async def test_a_poll_gone_while_its_task_was_being_committed_gives_it_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "gone")]))
        commit_entered = trio.Event()
        release_commit = trio.Event()
        real_commit = engine.store.commit

        async def slow_commit(commit: Commit, now_ms: int) -> int:
            commit_entered.set()
            await release_commit.wait()
            return await real_commit(commit, now_ms)

        async with trio.open_nursery() as nursery:
            poll_scope = trio.CancelScope()

            async def waiting_worker() -> None:
                with poll_scope:
                    await engine.poll("gone", worker_id="w1", timeout_ms=5_000)

            nursery.start_soon(waiting_worker)
            await trio.testing.wait_all_tasks_blocked()
            engine.store.commit = slow_commit  # type: ignore[method-assign]
            started: list[str] = []

            async def starter() -> None:
                started.append(await start(engine, "w"))

            nursery.start_soon(starter)
            await commit_entered.wait()
            poll_scope.cancel()  # the client goes away while the hand-off is committed
            await trio.testing.wait_all_tasks_blocked()
            engine.store.commit = real_commit  # type: ignore[method-assign]
            release_commit.set()
        [wf_id] = started
        workflow = await engine.get_workflow(wf_id)
        assert workflow.tasks[0].status is TaskStatus.SCHEDULED  # given back
        [again] = await engine.poll("gone", worker_id="w2", timeout_ms=0)
        assert again.task_id == workflow.tasks[0].task_id
        assert again.worker_id == "w2"


def test_a_released_reservation_reopens_a_full_taker() -> None:
    takers = Takers()
    taker = takers.open("q", "w", room=1)
    assert takers.reserve("q") is taker
    assert takers.reserve("q") is None  # full while its one reservation is pending
    takers.settle(taker, None)
    assert takers.reserve("q") is taker


async def test_an_update_hands_the_next_task_to_a_poll_waiting_on_its_type(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = RecordingStore()
    async with running_engine(store) as engine:
        await register(engine, wf_def("w", [simple("a", "first"), simple("b", "second")]))
        wf_id = await start(engine, "w")
        [task_a] = await engine.poll("first", worker_id="w1", timeout_ms=0)
        got: list[Task] = []

        async def waiting_worker() -> None:
            got.extend(await engine.poll("second", worker_id="w2", timeout_ms=5_000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting_worker)
            await trio.testing.wait_all_tasks_blocked()
            store.pops.clear()
            commits, pushed = store.commits, len(store.pushed)
            await engine.update_task(result(task_a))
        [task_b] = got
        assert task_b.reference_task_name == "b"
        assert task_b.status is TaskStatus.IN_PROGRESS
        assert task_b.worker_id == "w2"
        assert store.pops == []
        assert store.commits == commits + 1  # the update and the claim in one commit
        assert len(store.pushed) == pushed  # "b" never entered its queue
        workflow = await engine.get_workflow(wf_id)
        assert [t.status for t in workflow.tasks] == [TaskStatus.COMPLETED, TaskStatus.IN_PROGRESS]
