"""Helpers for the engine tests: a running Engine on a real store, definitions, clocks.

Rules: the engine's clock is trio's clock (plus a fixed epoch), so tests that take
pytest-trio's `autojump_clock` drive timers, retries and long polls in virtual time;
tests doing real network IO use the real clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.lowlevel

from core import codec
from core.models import StartWorkflowRequest, TaskDef, TaskResult, WorkflowDef
from core.store import DECIDER_QUEUE, Commit, Store, WorkflowRecord
from server.engine import Engine, EngineConfig
from server.stores.memory import MemoryStore

EPOCH_MS = 1_800_000_000_000


def clock_ms() -> int:
    return EPOCH_MS + int(trio.current_time() * 1000)


@asynccontextmanager
async def running_engine(
    store: Store | None = None, config: EngineConfig | None = None, *, own_store: bool = True
) -> AsyncIterator[Engine]:
    """A running Engine on `store` (a new MemoryStore by default). With own_store the
    store is opened here and closed afterwards; otherwise the caller manages it."""
    store = store or MemoryStore()
    if own_store:
        await store.open()
    engine = Engine(store, now_ms=clock_ms, config=config)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            yield engine
            nursery.cancel_scope.cancel()
    finally:
        if own_store:
            await store.close()


def wf_def(name: str, tasks: list[dict[str, Any]], **extra: Any) -> WorkflowDef:
    body = {"name": name, "version": 1, "tasks": tasks, **extra}
    return codec.convert(body, WorkflowDef)


def simple(ref: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name or ref, "taskReferenceName": ref, "type": "SIMPLE", **extra}


def fork_join(
    branches: list[list[dict[str, Any]]], join_on: list[str] | None = None
) -> list[dict[str, Any]]:
    """A FORK_JOIN of `branches` (ref "fork") and its JOIN (ref "join", on `join_on`)."""
    fork = {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": branches}
    join: dict[str, Any] = {"name": "join", "taskReferenceName": "join", "type": "JOIN"}
    if join_on is not None:
        join["joinOn"] = join_on
    return [fork, join]


class YieldingStore(MemoryStore):
    """A MemoryStore whose loads yield to other tasks, like any networked store does,
    so two engines (two "processes") on it really interleave their load/decide/commit."""

    async def load(self, workflow_id: str) -> WorkflowRecord | None:
        record = await super().load(workflow_id)
        await trio.lowlevel.checkpoint()  # the answer is in flight while others run
        return record


class RecordingStore(MemoryStore):
    """A MemoryStore that records what the engine asks of it: commits, task-queue pushes
    made in commits, pops, workflow loads and workflow-definition reads."""

    def __init__(self) -> None:
        super().__init__()
        self.commits = 0
        self.pops: list[str] = []
        self.pushed: list[tuple[str, str]] = []  # (queue, task id)
        self.loads = 0
        self.def_reads = 0

    def _seen(self, commit: Commit) -> None:
        self.commits += 1
        for op in commit.queue_ops:
            if op.kind == "push" and op.queue != DECIDER_QUEUE:
                self.pushed.append((op.queue, op.message_id))

    async def commit(self, commit: Commit, now_ms: int) -> int:
        self._seen(commit)
        return await super().commit(commit, now_ms)

    async def commit_many(self, commits: list[Commit], now_ms: int) -> list[int | Exception]:
        for commit in commits:
            self._seen(commit)
        return await super().commit_many(commits, now_ms)

    async def pop(self, queue: str, count: int, *, unack_ms: int, now_ms: int) -> list[str]:
        self.pops.append(queue)
        return await super().pop(queue, count, unack_ms=unack_ms, now_ms=now_ms)

    async def load(self, workflow_id: str) -> WorkflowRecord | None:
        self.loads += 1
        return await super().load(workflow_id)

    async def load_many(self, workflow_ids: list[str]) -> list[WorkflowRecord | None]:
        self.loads += len(workflow_ids)
        return await super().load_many(workflow_ids)

    async def get_workflow_def(self, name: str, version: int | None) -> bytes | None:
        self.def_reads += 1
        return await super().get_workflow_def(name, version)


async def register(engine: Engine, *defs: WorkflowDef | TaskDef) -> None:
    for d in defs:
        if isinstance(d, WorkflowDef):
            await engine.store.put_workflow_def(d.name, d.version, codec.encode(d))
        else:
            await engine.store.put_task_def(d.name, codec.encode(d))
    engine.metadata_changed()


def task_def(name: str, **extra: Any) -> TaskDef:
    return codec.convert({"name": name, **extra}, TaskDef)


async def start(
    engine: Engine, name: str, wf_input: dict[str, Any] | None = None, **kw: Any
) -> str:
    return await engine.start_workflow(StartWorkflowRequest(name=name, input=wf_input or {}, **kw))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def result(task: Any, status: str = "COMPLETED", **extra: Any) -> TaskResult:
    """A worker's TaskResult for `task`; extra fields in snake_case or camelCase."""
    body = {
        "workflowInstanceId": task.workflow_instance_id,
        "taskId": task.task_id,
        "status": status,
        **{_camel(k): v for k, v in extra.items()},
    }
    return codec.convert(body, TaskResult)
