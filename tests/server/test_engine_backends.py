"""The engine's core paths on every store backend of the contract suite (memory,
SQLite, and Redis/PostgreSQL where registered and reachable), on the real clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from core.enums import TaskStatus, WorkflowStatus
from core.models import Task
from core.store import DECIDER_QUEUE
from server.engine import Engine
from tests.server.engine_helpers import (
    fork_join,
    register,
    result,
    running_engine,
    simple,
    start,
    task_def,
    wf_def,
)
from tests.server.store_backends import BACKENDS, backend_params


@pytest.fixture(params=backend_params())
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    async with (
        BACKENDS[request.param].open(request) as store,
        running_engine(store, own_store=False) as running,
    ):
        yield running


async def test_flow_with_retry(engine: Engine) -> None:
    await register(
        engine,
        task_def("bk_flaky", retryCount=1, retryDelaySeconds=1),
        wf_def("bk", [simple("a", "bk_flaky"), simple("b", "bk_b")]),
    )
    wf_id = await start(engine, "bk", {"x": 1})
    [first] = await engine.poll("bk_flaky", worker_id="w")
    await engine.update_task(result(first, "FAILED"))
    with trio.fail_after(10):
        retried: list[Task] = []
        while not retried:
            retried = await engine.poll("bk_flaky", timeout_ms=2_000)
    assert retried[0].retry_count == 1
    await engine.update_task(result(retried[0], output_data={"y": 2}))
    [second] = await engine.poll("bk_b")
    await engine.update_task_v2(result(second))
    workflow = await engine.get_workflow(wf_id)
    assert workflow.status is WorkflowStatus.COMPLETED
    assert [t.status for t in workflow.tasks] == [
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
        TaskStatus.COMPLETED,
    ]
    assert not await engine.store.contains(DECIDER_QUEUE, wf_id)


async def test_concurrent_updates(engine: Engine) -> None:
    fork, join = fork_join([[simple(f"p{i}", "bk_par")] for i in range(4)])
    await register(engine, wf_def("bk_fork", [fork, join]))
    wf_id = await start(engine, "bk_fork")
    tasks = await engine.poll("bk_par", count=4)
    assert len(tasks) == 4
    async with trio.open_nursery() as nursery:
        for i, task in enumerate(tasks):
            nursery.start_soon(engine.update_task, result(task, output_data={"i": i}))
    workflow = await engine.get_workflow(wf_id)
    assert workflow.status is WorkflowStatus.COMPLETED
    by_id = {t.task_id: t for t in workflow.tasks}
    assert [by_id[t.task_id].output_data for t in tasks] == [{"i": i} for i in range(4)]
