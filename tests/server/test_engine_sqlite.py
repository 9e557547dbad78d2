"""The engine on the SQLite store, where persistence matters: a restart (a new store on
the same file) finds workflows, timers and queued tasks, and a task popped by a server
that died before committing is delivered again."""

from __future__ import annotations

from pathlib import Path

import trio

from core.enums import TaskStatus, WorkflowStatus
from core.models import Task
from core.store import DECIDER_QUEUE
from server.engine import EngineConfig
from server.stores.sqlite import SqliteStore
from tests.server.engine_helpers import register, result, running_engine, simple, start, wf_def


async def test_restart_redelivers_uncommitted_poll(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'podium.db'}"
    config = EngineConfig(task_unack_ms=300, poll_recheck_ms=100)
    async with running_engine(SqliteStore(url), config) as engine:
        await register(engine, wf_def("durable", [simple("a", "dur_task"), simple("b", "dur_b")]))
        wf_id = await start(engine, "durable", {"k": "v"})
        # The "crash": a poll popped the message but never committed TaskPolled.
        popped = await engine.store.pop("dur_task", 1, unack_ms=300, now_ms=engine.now_ms())
        assert len(popped) == 1

    async with running_engine(SqliteStore(url), config) as engine:
        workflow = await engine.get_workflow(wf_id)
        assert workflow.input == {"k": "v"}
        assert workflow.tasks[0].status is TaskStatus.SCHEDULED
        assert await engine.store.contains(DECIDER_QUEUE, wf_id)  # its timer survived
        with trio.fail_after(5):
            tasks: list[Task] = []
            while not tasks:
                tasks = await engine.poll("dur_task", worker_id="w2", timeout_ms=1_000)
        assert tasks[0].task_id == popped[0]
        await engine.update_task(result(tasks[0], output_data={"n": 1}))
        [b] = await engine.poll("dur_b")
        await engine.update_task(result(b))

    async with running_engine(SqliteStore(url), config) as engine:
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert workflow.tasks[0].output_data == {"n": 1}
        assert workflow.tasks[0].worker_id == "w2"
        assert not await engine.store.contains(DECIDER_QUEUE, wf_id)
        assert await engine.queue_sizes() == {}
