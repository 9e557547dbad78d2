"""Shared pieces of the store contract suite: the per-backend fixture and record builders.

Rules: backend-agnostic helpers only; every test module of the contract suite
(test_store_contract*.py) declares its `store` fixture with `backend_params()` and
`open_backend()`, so each test runs once per registered backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from core.store import Commit, QueueOp, Store, WorkflowRecord
from tests.server.store_backends import BACKENDS

T0 = 1_700_000_000_000


@asynccontextmanager
async def open_backend(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """The opened, empty store of the backend named by `request.param`."""
    async with BACKENDS[request.param].open(request) as store:
        yield store


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
