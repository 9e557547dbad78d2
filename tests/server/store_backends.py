"""The store backends the contract suite runs on: one registry entry per backend.

Rules: an entry is a `Backend` whose `open(request)` is an async context manager yielding
an opened, empty Store and closing it afterwards. It pulls the fixtures it needs from
`request` (`tmp_path`, `redis_url`, `postgres_dsn`), so a backend whose service is absent
skips (or fails under CI=true) through those fixtures. Each test gets an isolated store:
a fresh file, a flushed database or a private namespace/schema. Adding a backend is one
entry in BACKENDS; `persistent=True` adds it to the restart test (a second store opened on
the same `url` must see everything).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.store import Store
from server.stores import open_store


@dataclass(frozen=True)
class Backend:
    open: Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Store]]
    marks: tuple[Any, ...] = ()
    persistent: bool = False


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    """Open the store for `url`, yield it, close it."""
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def _memory(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with opened("memory://") as store:
        yield store


@asynccontextmanager
async def _sqlite(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    async with opened(f"sqlite:///{tmp_path / 'podium.db'}") as store:
        yield store


@asynccontextmanager
async def _redis(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    # A private key prefix per test, deleted afterwards (the database is shared).
    import uuid

    from tests.server.remote_stores import drop_redis_prefix, with_query

    redis_url: str = request.getfixturevalue("redis_url")
    prefix = f"podium-test-{uuid.uuid4().hex[:12]}"
    try:
        async with opened(with_query(redis_url, prefix=prefix)) as store:
            yield store
    finally:
        await drop_redis_prefix(redis_url, prefix)


@asynccontextmanager
async def _postgres(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    # One schema per session (migrated on first open), emptied before every test.
    from tests.server.remote_stores import truncate_postgres_schema, with_query

    postgres_dsn: str = request.getfixturevalue("postgres_dsn")
    schema: str = request.getfixturevalue("postgres_test_schema")
    async with opened(with_query(postgres_dsn, schema=schema)) as store:
        await truncate_postgres_schema(postgres_dsn, schema)
        yield store


BACKENDS: dict[str, Backend] = {
    "memory": Backend(_memory),
    "sqlite": Backend(_sqlite, persistent=True),
    "redis": Backend(_redis, marks=(pytest.mark.redis,), persistent=True),
    "postgres": Backend(_postgres, marks=(pytest.mark.postgres,), persistent=True),
}


def backend_params(*, persistent_only: bool = False) -> list[Any]:
    """pytest params (with each backend's marks) for `@pytest.fixture(params=...)`."""
    return [
        pytest.param(name, marks=backend.marks, id=name)
        for name, backend in BACKENDS.items()
        if backend.persistent or not persistent_only
    ]
