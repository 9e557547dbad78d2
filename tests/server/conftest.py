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


# The contract suite's version of this test assumes both writers have loaded before either
# commits because of one trio checkpoint; with a networked store the first writer's load
# reply can arrive, and its commit land, before the second writer's load has run (for
# Redis, always: the second load opens a new pooled connection). The second writer then
# legitimately commits version 3 and the test's count of losers is 0. The same property is
# tested deterministically (a barrier after both loads) in test_store_redis.py and
# test_store_postgres.py: `test_concurrent_commits_on_one_workflow_exactly_one_wins`.
_RACY_FOR_NETWORKED_STORES = {
    "test_store_contract.py::test_concurrent_commits_on_one_workflow_exactly_one_wins[redis]",
    "test_store_contract.py::test_concurrent_commits_on_one_workflow_exactly_one_wins[postgres]",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.nodeid.endswith(racy) for racy in _RACY_FOR_NETWORKED_STORES):
            item.add_marker(
                pytest.mark.skip(
                    reason="timing-dependent with a networked store; the barrier version in "
                    "test_store_redis.py / test_store_postgres.py covers it"
                )
            )
