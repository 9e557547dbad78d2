"""Search on Redis and PostgreSQL agrees with the in-process reference on random input.

Rules: a fixed seed builds workflows whose text fields hold the characters that trip SQL
(`%`, `_`, `\\`, `'`, `*`, case, non-ASCII, empty strings, None) and a few hundred random
queries, sorts and freeText terms over them. Each query's (totalHits, ids) on the remote
store must equal MemoryStore's, which filters with core.search directly. The store under
test comes from tests/server/store_backends.py (isolated per test).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from core.store import Commit, SearchRequest, Store, WorkflowRecord
from server.stores.memory import MemoryStore
from tests.server.store_backends import BACKENDS

SEED = 20261126
TEXTS = ["a%b", "a_b", "ab", "AB", "x\\y", "it's", "st*r", "é", "ß", "", "order", "ord"]
STATUSES = ["RUNNING", "COMPLETED", "FAILED", "PAUSED", "TERMINATED", "TIMED_OUT"]


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("postgres", marks=pytest.mark.postgres)])  # fmt: skip
async def remote(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with BACKENDS[request.param].open(request) as store:
        yield store


def _records(rng: random.Random) -> list[WorkflowRecord]:
    def maybe_text() -> str | None:
        return None if rng.random() < 0.2 else rng.choice(TEXTS)

    rows = []
    for i in range(40):
        create = rng.randrange(1000, 1100)
        end = 0 if rng.random() < 0.4 else create + rng.randrange(0, 50)
        rows.append(
            WorkflowRecord(
                workflow_id=f"wf-{i:02d}{rng.choice(['', '%', '_', 'X'])}",
                workflow_name=rng.choice([*TEXTS[:6], "order", "order_v2"]),
                workflow_version=rng.randrange(1, 4),
                status=rng.choice(STATUSES),
                create_time=create,
                update_time=create + rng.randrange(0, 100),
                end_time=end,
                correlation_id=maybe_text(),
                parent_workflow_id=maybe_text(),
                search_text=rng.choice(['{"k":"Alice"}', "shipment failed", "", "a%b c_d"]),
            )
        )
    return rows


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cond(rng: random.Random) -> str:
    text_fields = ["workflowType", "workflowId", "correlationId", "status", "parentWorkflowId"]
    int_fields = ["startTime", "updateTime", "endTime", "version"]
    if rng.random() < 0.6:
        field = rng.choice(text_fields)
        pool = STATUSES if field == "status" else [*TEXTS, "wf-0*", "*b", "a*", "*"]
        op = rng.choice(["=", "!=", "IN", "STARTS_WITH", "IS NULL", "IS NOT NULL", ">", "<"])
        value = rng.choice(pool)
        if op in ("IS NULL", "IS NOT NULL"):
            return f"{field} {op}"
        if op == "IN":
            values = ", ".join(_quote(rng.choice(pool)) for _ in range(rng.randrange(1, 4)))
            return f"{field} IN ({values})"
        return f"{field} {op} {_quote(value)}"
    field = rng.choice(int_fields)
    number = rng.choice([0, 1, 2, 3, 1000, 1050, 1100, 1150])
    op = rng.choice(["=", "!=", ">", "<", "BETWEEN", "IN", "IS NULL", "IS NOT NULL"])
    if op in ("IS NULL", "IS NOT NULL"):
        return f"{field} {op}"
    if op == "BETWEEN":
        return f"{field} BETWEEN {number} AND {number + rng.randrange(0, 80)}"
    if op == "IN":
        return f"{field} IN ({number}, {rng.choice([1, 2, 1020, 1080])})"
    return f"{field} {op} {number}"


def _query(rng: random.Random, depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.45:
        return _cond(rng)
    left, right = _query(rng, depth + 1), _query(rng, depth + 1)
    joined = f"{left} {rng.choice(['AND', 'OR'])} {right}"
    return f"({joined})" if rng.random() < 0.5 else joined


def _sort(rng: random.Random) -> str:
    fields = ["workflowType", "workflowId", "correlationId", "startTime", "endTime", "version"]
    keys = [f"{rng.choice(fields)}:{rng.choice(['ASC', 'DESC'])}" for _ in range(2)]
    return "|".join(keys[: rng.randrange(0, 3)])


async def test_remote_search_matches_the_reference(remote: Store) -> None:
    rng = random.Random(SEED)
    reference = MemoryStore()
    for row in _records(rng):
        for store in (remote, reference):
            await store.commit(Commit(record=row, expected_version=0), 0)
    checked = 0
    for _ in range(250):
        request = SearchRequest(
            query=_query(rng) if rng.random() < 0.9 else "",
            free_text=rng.choice(["*", "*", "alice", "A%B", "c_d", "ship*", "wf-1", "é"]),
            sort=_sort(rng),
            start=rng.choice([0, 0, 3]),
            size=rng.choice([100, 5]),
        )
        want_total, want = await reference.search(request)
        got_total, got = await remote.search(request)
        assert (got_total, [r.workflow_id for r in got]) == (
            want_total,
            [r.workflow_id for r in want],
        ), request
        checked += want_total > 0
    assert checked > 50  # the random queries do select rows, not just empty sets
