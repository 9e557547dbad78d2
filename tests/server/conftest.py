"""Fixtures for tests/server: a PostgreSQL schema shared by one test session.

Rules: the contract suite's postgres backend migrates this schema once per session and
empties it (DELETE) before every test (a fresh schema per test costs ~0.25 s of DDL each); the
schema is dropped when the session ends. Tests that exercise migrations use their own
schemas (tests/server/test_store_postgres.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import trio

from tests.server.remote_stores import drop_postgres_schema


@pytest.fixture(scope="session")
def postgres_test_schema(postgres_dsn: str) -> Iterator[str]:
    schema = f"podium_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    yield schema
    trio.run(drop_postgres_schema, postgres_dsn, schema)
