"""Store contract, search: Conductor's query language, freeText, sort and paging (spec 1.2).

Rules: as tests/server/test_store_contract.py. The same six workflows are stored in every
backend and every expected result is written out by hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.errors import BadRequest
from core.store import SearchRequest, Store
from tests.server.contract_support import create, open_backend, rec
from tests.server.store_backends import backend_params


@pytest.fixture(params=backend_params())
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with open_backend(request) as s:
        yield s


# ====================================================================== search

SEARCH_ROWS = [
    rec(
        "wf-a",
        name="order",
        version=1,
        status="RUNNING",
        create=1000,
        update=1500,
        corr="c-1",
        text='{"customer":"Alice"}',
    ),
    rec(
        "wf-b",
        name="order",
        version=2,
        status="COMPLETED",
        create=2000,
        update=2600,
        end=2600,
        corr="c-2",
        text='{"customer":"bob"}',
    ),
    rec(
        "wf-c",
        name="order",
        version=2,
        status="FAILED",
        create=3000,
        update=3300,
        end=3300,
        parent="wf-a",
        text="shipment failed",
    ),
    rec(
        "wf-d",
        name="payment",
        version=1,
        status="TIMED_OUT",
        create=4000,
        update=4500,
        end=4500,
        corr="c-1",
        parent="wf-a",
    ),
    rec(
        "wf-e",
        name="payment_v2",
        version=3,
        status="PAUSED",
        create=5000,
        update=5100,
        corr="",
        text='it\'s "quoted" 100%',
    ),
    rec(
        "wf-f",
        name="order.special",
        version=1,
        status="TERMINATED",
        create=6000,
        update=6100,
        end=6100,
        corr="x*y",
        parent="wf-b",
        text="O'Brien",
    ),
]


@pytest.fixture
async def searchable(store: Store) -> Store:
    for r in SEARCH_ROWS:
        await create(store, r)
    return store


def ids(letters: str) -> list[str]:
    return [f"wf-{c}" for c in letters]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "abcdef"),
        ("workflowType = 'order'", "abc"),
        ('workflowType = "order"', "abc"),
        ("workflowType = order", "abc"),
        ("workflowType='order'", "abc"),
        ("workflowType != 'order'", "def"),
        ('workflowType = "order.special"', "f"),
        ("status = 'RUNNING'", "a"),
        ("status = 'running'", ""),
        ("workflowId = 'wf-c'", "c"),
        ("startTime > 3000", "def"),
        ("startTime < 3000", "ab"),
        ("endTime > 3000", "cdf"),
        ("endTime < 3000", "b"),
        ("updateTime > 4500", "ef"),
        ("version = 2", "bc"),
        ("version IN (2, 3)", "bce"),
        ("status IN (FAILED,TIMED_OUT)", "cd"),
        ("workflowId IN ('wf-a', \"wf-f\", 'nope')", "af"),
        ("startTime BETWEEN 2000 AND 4000", "bcd"),
        ("endTime BETWEEN 0 AND 4000", "bc"),
        ("correlationId IS NULL", "ce"),
        ("correlationId IS NOT NULL", "abdf"),
        ("endTime IS NULL", "ae"),
        ("endTime IS NOT NULL", "bcdf"),
        ("parentWorkflowId IS NOT NULL", "cdf"),
        ("parentWorkflowId = 'wf-a'", "cd"),
        ("correlationId = 'c-1'", "ad"),
        ("correlationId != 'c-1'", "bcef"),
        ("workflowType STARTS_WITH 'pay'", "de"),
        ("workflowType STARTS_WITH 'order.'", "f"),
        ("correlationId STARTS_WITH 'x*'", "f"),
        ("correlationId STARTS_WITH 'c'", "abd"),
        ("workflowType = 'pay*'", "de"),
        ("workflowType = 'order*'", "abcf"),
        ("workflowType = '*_v2'", "e"),
        ("workflowType != 'order*'", "de"),
        ("correlationId = 'x*y'", "f"),
        ("workflowType = 'order' AND status = 'FAILED'", "c"),
        ("status = 'RUNNING' OR status = 'PAUSED'", "ae"),
        ("workflowType = 'order' and version = 1", "a"),
        # Conductor groups to the right: a AND b OR c means a AND (b OR c).
        ("workflowType = 'order' AND status = 'RUNNING' OR version = 3", "a"),
        ("(workflowType = 'order' AND status = 'RUNNING') OR version = 3", "ae"),
        ("updateTime > 2600 AND (status = 'TIMED_OUT' OR status = 'TERMINATED')", "df"),
        ("((status = 'FAILED'))", "c"),
    ],
)
async def test_search_query_operators(searchable: Store, query: str, expected: str) -> None:
    total, rows = await searchable.search(SearchRequest(query=query, sort="workflowId:ASC"))
    assert [r.workflow_id for r in rows] == ids(expected)
    assert total == len(expected)


@pytest.mark.parametrize(
    ("free_text", "query", "expected"),
    [
        ("*", "", "abcdef"),
        ("", "", "abcdef"),
        ("alice", "", "a"),
        ("BOB", "", "b"),
        ("ship*failed", "", "c"),
        ("c-1", "", "ad"),
        ("wf-d", "", "d"),
        ("payment", "", "de"),
        ("o'brien", "", "f"),
        ("100%", "", "e"),
        ("_ice", "", ""),
        ("shipment alice", "", ""),
        ("shipment failed", "", "c"),
        ("bob", "workflowType = 'order'", "b"),
        ("bob", "workflowType = 'payment'", ""),
    ],
)
async def test_search_free_text(
    searchable: Store, free_text: str, query: str, expected: str
) -> None:
    total, rows = await searchable.search(
        SearchRequest(query=query, free_text=free_text, sort="workflowId")
    )
    assert [r.workflow_id for r in rows] == ids(expected)
    assert total == len(expected)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("startTime:ASC", "abcdef"),
        ("", "fedcba"),  # default: newest first
        ("startTime:DESC", "fedcba"),
        ("workflowType:ASC|startTime:DESC", "cbafde"),
        ("endTime:DESC", "fdcbae"),  # null (0) last when descending
        ("endTime:ASC", "aebcdf"),  # and first when ascending
        ("correlationId:ASC", "ceadbf"),
        ("version", "adfbce"),
        ("version:DESC|workflowId:DESC", "ecbfda"),
        ("status:asc", "bceafd"),
    ],
)
async def test_search_sort(searchable: Store, sort: str, expected: str) -> None:
    _, rows = await searchable.search(SearchRequest(sort=sort))
    assert [r.workflow_id for r in rows] == ids(expected)


async def test_search_pages_with_total_hits(searchable: Store) -> None:
    req = SearchRequest(sort="startTime:ASC", start=2, size=2)
    total, rows = await searchable.search(req)
    assert total == 6
    assert [r.workflow_id for r in rows] == ids("cd")
    total, rows = await searchable.search(SearchRequest(sort="startTime", start=5, size=10))
    assert total == 6
    assert [r.workflow_id for r in rows] == ids("f")
    total, rows = await searchable.search(SearchRequest(sort="startTime", start=10, size=10))
    assert total == 6
    assert rows == []
    total, rows = await searchable.search(
        SearchRequest(query="workflowType = 'order'", sort="startTime:DESC", start=1, size=1)
    )
    assert total == 3
    assert [r.workflow_id for r in rows] == ids("b")


async def test_search_returns_index_fields(searchable: Store) -> None:
    _, rows = await searchable.search(SearchRequest(query="workflowId = 'wf-c'"))
    (row,) = rows
    assert (row.workflow_name, row.workflow_version, row.status) == ("order", 2, "FAILED")
    assert (row.create_time, row.update_time, row.end_time) == (3000, 3300, 3300)
    assert (row.correlation_id, row.parent_workflow_id) == (None, "wf-a")
    assert row.version == 1


@pytest.mark.parametrize(
    ("query", "sort", "message"),
    [
        ("status = ", "", "query: expected a value for status at position 9"),
        ("nope = 1", "", "query: unknown field 'nope' at position 0"),
        ("startTime > 'yesterday'", "", "takes an integer"),
        ("status = 'RUNNING", "", "is never closed"),
        ("", "bogus:ASC", "sort: unknown field 'bogus'"),
        ("", "startTime:UP", "sort: order for startTime must be ASC or DESC"),
    ],
)
async def test_search_rejects_malformed_input(
    searchable: Store, query: str, sort: str, message: str
) -> None:
    with pytest.raises(BadRequest) as info:
        await searchable.search(SearchRequest(query=query, sort=sort))
    assert message in info.value.message
