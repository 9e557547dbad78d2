"""Store backends behind core.store.Store, chosen by URL scheme.

Rules: each backend is one module, imported only when its scheme is used (so SQLite users
never import asyncpg). Every backend passes the one contract suite in
tests/server/test_store_contract.py.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlparse

from core.errors import BadRequest
from core.store import Store

# scheme -> (module, class name)
BACKENDS: dict[str, tuple[str, str]] = {
    "memory": ("server.stores.memory", "MemoryStore"),
    "sqlite": ("server.stores.sqlite", "SqliteStore"),
    "redis": ("server.stores.redis", "RedisStore"),
    "postgresql": ("server.stores.postgres", "PostgresStore"),
    "postgres": ("server.stores.postgres", "PostgresStore"),
}


def open_store(url: str) -> Store:
    """Build (not yet open) the backend for `url`; call `await store.open()` next.

    Raises:
        BadRequest: the scheme is not one of memory, sqlite, redis, postgresql.
    """
    scheme = urlparse(url).scheme
    if scheme not in BACKENDS:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise BadRequest(f"unknown store URL {url!r}: use one of {known}")
    module_name, class_name = BACKENDS[scheme]
    cls = getattr(importlib.import_module(module_name), class_name)
    store: Store = cls(url)
    return store
