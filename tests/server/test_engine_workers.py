"""The worker protocol on the engine: long poll, update-v2, admission limits, crash
safety (visibility timeouts), concurrent updates, sweeper repair."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.lowlevel

from core.enums import TaskStatus, WorkflowStatus
from core.errors import BadRequest
from core.models import Task
from server.engine import EngineConfig
from server.stores.memory import MemoryStore
from tests.server.engine_helpers import (
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


async def test_long_poll_is_woken_by_a_new_task(autojump_clock: trio.abc.Clock) -> None:
    # Re-popping only every 5 s: without the wake-up the poll would see the task late.
    config = EngineConfig(poll_recheck_ms=5_000)
    async with running_engine(config=config) as engine:
        await register(engine, wf_def("w", [simple("a", "lp_task")]))
        got: list[Task] = []
        returned_at: list[float] = []

        async def waiting_worker() -> None:
            got.extend(await engine.poll("lp_task", worker_id="w", timeout_ms=5_000))
            returned_at.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting_worker)
            await trio.testing.wait_all_tasks_blocked()
            assert got == []  # the poller is waiting
            started_at = trio.current_time()
            await start(engine, "w")
        assert len(got) == 1
        assert got[0].status is TaskStatus.IN_PROGRESS
        # Virtual time only moves when every task sleeps: the poller returned without
        # any time passing, i.e. it was woken by the commit, not by a timeout or re-pop.
        assert returned_at == [started_at]


async def test_long_poll_times_out_empty(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        before = trio.current_time()
        assert await engine.poll("nothing", timeout_ms=2_000) == []
        assert trio.current_time() - before == pytest.approx(2.0)


async def test_poll_arguments_are_checked(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        with pytest.raises(BadRequest, match="cannot be more than 5 seconds"):
            await engine.poll("t", timeout_ms=5_001)
        with pytest.raises(BadRequest, match="count"):
            await engine.poll("t", count=0)


async def test_update_v2_returns_next_task(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a1", "same"), simple("a2", "same")]))
        wf_id = await start(engine, "w")
        [first] = await engine.poll("same", worker_id="w9")
        nxt = await engine.update_task_v2(result(first, workerId="w9"))
        assert nxt is not None
        assert nxt.reference_task_name == "a2"
        assert nxt.status is TaskStatus.IN_PROGRESS
        assert nxt.worker_id == "w9"
        assert await engine.update_task_v2(result(nxt)) is None
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.COMPLETED


async def test_batch_poll_and_poll_data(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "batch")]))
        ids = [await start(engine, "w") for _ in range(5)]
        tasks = await engine.poll("batch", worker_id="wb", count=3)
        assert len(tasks) == 3
        assert {t.workflow_instance_id for t in tasks} <= set(ids)
        assert len(await engine.poll("batch", count=10)) == 2
        [data] = await engine.poll_data("batch")
        assert data.queue_name == "batch"
        assert data.last_poll_time > 0


async def test_domains_route_to_their_queue(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "dom_task")]))
        await start(engine, "w", task_to_domain={"dom_task": "blue"})
        assert await engine.poll("dom_task") == []  # the un-domained queue is empty
        [task] = await engine.poll("dom_task", domain="blue")
        assert task.domain == "blue"


async def test_concurrent_exec_limit(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("limited", concurrentExecLimit=1),
            wf_def("w", [simple("l", "limited")]),
        )
        await start(engine, "w")
        await start(engine, "w")
        [only] = await engine.poll("limited", count=2)
        assert await engine.poll("limited") == []  # still one in flight
        await engine.update_task(result(only))
        [second] = await engine.poll("limited", timeout_ms=5_000)
        assert second.task_id != only.task_id


async def test_rate_limit_per_frequency(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("rated", rateLimitPerFrequency=2, rateLimitFrequencyInSeconds=10),
            wf_def("w", [simple("r", "rated")]),
        )
        for _ in range(3):
            await start(engine, "w")
        t0 = trio.current_time()
        assert len(await engine.poll("rated", count=3)) == 2
        assert await engine.poll("rated") == []
        while not await engine.poll("rated", timeout_ms=5_000):
            pass
        assert trio.current_time() - t0 >= 10


async def test_popped_but_uncommitted_task_comes_back(autojump_clock: trio.abc.Clock) -> None:
    config = EngineConfig(task_unack_ms=30_000)
    async with running_engine(config=config) as engine:
        await register(engine, wf_def("w", [simple("a", "crashy")]))
        wf_id = await start(engine, "w")
        # A poller that crashed after popping and before its commit: the message is hidden.
        now = engine.now_ms()
        [message] = await engine.store.pop("crashy", 1, unack_ms=config.task_unack_ms, now_ms=now)
        assert await engine.poll("crashy") == []
        workflow = await engine.get_workflow(wf_id)
        assert workflow.tasks[0].status is TaskStatus.SCHEDULED  # nothing was committed
        await trio.sleep(31)
        [task] = await engine.poll("crashy")
        assert task.task_id == message


async def test_sweeper_repairs_a_lost_message(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "lost")]))
        wf_id = await start(engine, "w")
        task_id = (await engine.get_workflow(wf_id)).tasks[0].task_id
        assert await engine.store.remove("lost", task_id)
        assert await engine.poll("lost") == []
        await engine.requeue_sweep(wf_id)
        [task] = await engine.poll("lost", timeout_ms=5_000)
        assert task.task_id == task_id
        assert engine.sweeper.repaired == 1


async def test_concurrent_updates_lose_nothing(autojump_clock: trio.abc.Clock) -> None:
    fork, join = fork_join(
        [[simple(f"p{i}", "par")] for i in range(6)], [f"p{i}" for i in range(6)]
    )
    store = YieldingStore()
    async with running_engine(store) as engine_a, running_engine(store) as engine_b:
        await register(engine_a, wf_def("forked", [fork, join]))
        wf_id = await start(engine_a, "forked")
        tasks = await engine_a.poll("par", count=6)
        assert len(tasks) == 6
        async with trio.open_nursery() as nursery:
            for i, task in enumerate(tasks):
                engine = engine_a if i % 2 else engine_b
                nursery.start_soon(engine.update_task, result(task, output_data={"i": i}))
        workflow = await engine_a.get_workflow(wf_id)
        outputs = {t.reference_task_name: t.output_data for t in workflow.tasks}
        assert all(outputs[t.reference_task_name] == {"i": i} for i, t in enumerate(tasks))
        assert workflow.status is WorkflowStatus.COMPLETED
        # The two engines really raced: some commits lost and were decided again.
        assert engine_a.executor.conflicts + engine_b.executor.conflicts > 0
        assert engine_a.executor.locks.held() == 0


async def test_cancelled_long_poll_loses_nothing(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "cancel_me")]))
        with trio.move_on_after(1):  # the client goes away while the poll waits
            await engine.poll("cancel_me", timeout_ms=5_000)
        wf_id = await start(engine, "w")
        [task] = await engine.poll("cancel_me")
        assert task.workflow_instance_id == wf_id


async def test_tasks_claimed_for_a_cancelled_poll_are_given_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "give_back")]))
        wf_id = await start(engine, "w")
        with trio.CancelScope() as scope:
            scope.cancel()  # cancelled before the (shielded) claim even starts
            await engine.poll("give_back")
        workflow = await engine.get_workflow(wf_id)
        assert workflow.tasks[0].status is TaskStatus.SCHEDULED
        [task] = await engine.poll("give_back", worker_id="next")
        assert task.worker_id == "next"


class FlakyPopStore(MemoryStore):
    """The decider queue's first pops fail, like a store connection dropping."""

    failures = 2

    async def pop(self, queue: str, count: int, *, unack_ms: int, now_ms: int) -> list[str]:
        if queue == "_deciderQueue" and self.failures > 0:
            self.failures -= 1
            raise ConnectionError("store unreachable")
        return await super().pop(queue, count, unack_ms=unack_ms, now_ms=now_ms)


async def test_sweeper_survives_store_errors(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyPopStore()
    async with running_engine(store) as engine:
        wait = {
            "name": "w",
            "taskReferenceName": "w",
            "type": "WAIT",
            "inputParameters": {"duration": "5 seconds"},
        }
        await register(engine, wf_def("waits_on_flaky", [wait]))
        wf_id = await start(engine, "waits_on_flaky")
        await trio.sleep(10)
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.COMPLETED
    assert store.failures == 0
    assert "popping the decider queue failed" in caplog.text


def _count_pops(engine: Any, queue: str) -> list[str]:
    """Wraps engine.store.pop to record every pop of `queue`."""
    pops: list[str] = []
    pop: Callable[..., Awaitable[list[str]]] = engine.store.pop

    async def counting_pop(name: str, count: int, **kw: Any) -> list[str]:
        if name == queue:
            pops.append(name)
            await trio.lowlevel.checkpoint()  # other polls run while this pop is in flight
        return await pop(name, count, **kw)

    engine.store.pop = counting_pop
    return pops


async def test_pollers_woken_by_one_push_pop_the_queue_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "herd")]))
        pops = _count_pops(engine, "herd")
        got: list[list[Task]] = []

        async def waiting_worker() -> None:
            got.append(await engine.poll("herd", count=5, timeout_ms=5_000))

        # A task queued while nobody waits, its message then lost: the pollers below
        # find the queue empty and wait; the message comes back as repair re-queues it
        # (a start would hand the task to a waiting poll directly, with no push).
        wf_id = await start(engine, "w")
        [task] = (await engine.get_workflow(wf_id)).tasks
        assert await engine.store.remove("herd", task.task_id)
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(waiting_worker)
            await trio.testing.wait_all_tasks_blocked()
            pops.clear()
            await engine.store.push("herd", task.task_id, now_ms=engine.now_ms())
            engine.waiters.notify("herd")
            await trio.testing.wait_all_tasks_blocked()
            # The first woken poll asked for more than was announced: the others wait
            # for its answer (it came back short, so the queue is empty) and pop nothing.
            assert pops == ["herd"]
            assert [len(tasks) for tasks in got] == [1]
        assert sorted(len(tasks) for tasks in got) == [0, 0, 1]


async def test_a_queue_found_empty_is_popped_again_after_a_push_or_a_while(
    autojump_clock: trio.abc.Clock,
) -> None:
    from server.engine.workers import EMPTY_FOR_MS

    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a", "quiet")]))
        pops = _count_pops(engine, "quiet")
        assert await engine.poll("quiet", timeout_ms=0) == []
        assert await engine.poll("quiet", timeout_ms=0) == []
        assert pops == ["quiet"]  # the second poll knew the queue was empty
        await start(engine, "w")  # a push: the next poll pops
        [task] = await engine.poll("quiet", timeout_ms=0)
        assert task.status is TaskStatus.IN_PROGRESS
        assert len(pops) == 2
        # A message no push announced here (say, another server's) is seen once the
        # empty mark has lapsed.
        wf_id = await start(engine, "w")
        [popped] = await engine.store.pop("quiet", 1, unack_ms=1, now_ms=engine.now_ms())
        assert await engine.poll("quiet", timeout_ms=0) == []  # hidden, and marked empty
        await trio.sleep(EMPTY_FOR_MS / 1000)
        [again] = await engine.poll("quiet", timeout_ms=0)
        assert again.task_id == popped
        assert again.workflow_instance_id == wf_id
