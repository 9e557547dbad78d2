"""server.stores.sql_search: rendered SQL selects and orders exactly what core.search does.

Rules: a hypothesis differential test runs random queries, freeText and sorts against
random rows both through core.search (Python) and through the rendered SQL on a real
SQLite database built by the store's own migrations; the results must be identical.
The PostgreSQL dialect is checked for placeholder numbering here and end to end by the
contract suite on the PostgreSQL backend.
"""

from __future__ import annotations

import functools
import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import search
from core.store import WorkflowRecord
from server.stores import sqlite_schema
from server.stores.sql_search import render_order_by, render_where

TEXTS = ["order", "order.x", "or*der", "pay_1", "100%", "a[b]?", "Zoë", "", "x\\y"]
NUMBERS = [0, 1, 5, 100, 101]
TEXT_FIELDS = [f for f in search.FIELDS.values() if f.kind == "text"]
INT_FIELDS = [f for f in search.FIELDS.values() if f.kind == "int"]


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@st.composite
def records(draw: st.DrawFn) -> list[WorkflowRecord]:
    n = draw(st.integers(0, 8))
    out = []
    for i in range(n):
        out.append(
            WorkflowRecord(
                workflow_id=f"w{i}",
                workflow_name=draw(st.sampled_from(TEXTS[:-2] or ["x"])) or "n",
                workflow_version=draw(st.sampled_from(NUMBERS)),
                status=draw(st.sampled_from(["RUNNING", "FAILED", "COMPLETED"])),
                create_time=draw(st.sampled_from(NUMBERS)),
                update_time=draw(st.sampled_from(NUMBERS)),
                end_time=draw(st.sampled_from(NUMBERS)),
                correlation_id=draw(st.none() | st.sampled_from(TEXTS)),
                parent_workflow_id=draw(st.none() | st.sampled_from(TEXTS)),
                search_text=draw(st.sampled_from(TEXTS)),
            )
        )
    return out


@st.composite
def conditions(draw: st.DrawFn) -> str:
    text = draw(st.booleans())
    field = draw(st.sampled_from(TEXT_FIELDS if text else INT_FIELDS))
    value = (
        st.sampled_from([*TEXTS, "or*", "*", "*1", "*.*", "o*", "a[*"]).map(quote)
        if text
        else st.sampled_from([str(n) for n in NUMBERS])
    )
    ops = ["=", "!=", ">", "<", "IN", "BETWEEN", "IS NULL", "IS NOT NULL"]
    if text:
        ops.append("STARTS_WITH")
    op = draw(st.sampled_from(ops))
    if op == "IN":
        values = draw(st.lists(value, min_size=1, max_size=3))
        return f"{field.name} IN ({', '.join(values)})"
    if op == "BETWEEN":
        return f"{field.name} BETWEEN {draw(value)} AND {draw(value)}"
    if op.startswith("IS"):
        return f"{field.name} {op}"
    return f"{field.name} {op} {draw(value)}"


def queries() -> st.SearchStrategy[str]:
    return st.recursive(
        conditions(),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(" ".join),
            inner.map(lambda q: f"({q})"),
        ),
        max_leaves=5,
    )


sorts = st.lists(
    st.tuples(st.sampled_from(list(search.FIELDS)), st.sampled_from(["", ":ASC", ":DESC"])),
    max_size=3,
).map(lambda keys: "|".join(name + order for name, order in keys))

free_texts = st.lists(
    st.sampled_from(["*", "or", "1", "%", "_", "zo", "ë", "x*y", "[b]"]), max_size=2
).map(" ".join)


@functools.cache
def _connection() -> sqlite3.Connection:
    # One schema for every example (migrating per example would dominate the run time).
    conn = sqlite_schema.connect(":memory:")
    sqlite_schema.migrate(conn)
    return conn


def database(rows: list[WorkflowRecord]) -> sqlite3.Connection:
    conn = _connection()
    conn.execute("DELETE FROM workflow")
    conn.executemany(
        "INSERT INTO workflow VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, x'', 1, '')",
        [
            (
                r.workflow_id,
                r.workflow_name,
                r.workflow_version,
                r.status,
                r.create_time,
                r.update_time,
                r.end_time,
                r.correlation_id,
                r.parent_workflow_id,
                r.search_text,
            )
            for r in rows
        ],
    )
    return conn


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=records(), query=queries(), free_text=free_texts, sort=sorts)
def test_sqlite_rendering_agrees_with_core_search(
    rows: list[WorkflowRecord], query: str, free_text: str, sort: str
) -> None:
    node = search.parse_query(query)
    terms = search.parse_free_text(free_text)
    keys = search.parse_sort(sort)
    hits = [r for r in rows if search.matches(node, r) and search.free_text_matches(terms, r)]
    expected = [r.workflow_id for r in search.sort_rows(hits, keys)]

    where, params = render_where(node, terms, dialect="sqlite")
    order = render_order_by(keys, dialect="sqlite")
    conn = database(rows)
    got = [
        row[0]
        for row in conn.execute(
            f"SELECT workflow_id FROM workflow WHERE {where} ORDER BY {order}", params
        )
    ]
    assert got == expected, (query, free_text, sort, where, params)


def test_postgres_placeholders_are_numbered_from_first_param() -> None:
    node = search.parse_query("status IN (A, B) AND workflowType = 'x*' OR version BETWEEN 1 AND 2")
    where, params = render_where(node, ("foo",), dialect="postgres", first_param=3)
    assert params == ["A", "B", "x%", 1, 2, "%foo%"]
    for n in range(3, 9):
        assert f"${n}" in where
    assert "$9" not in where
    assert "?" not in where
    assert "LIKE $5 ESCAPE" in where
    assert "lower(" in where
    assert "podium_lower" not in where


def test_postgres_order_by_uses_byte_collation_for_text() -> None:
    sql = render_order_by(search.parse_sort("workflowType:DESC|version"), dialect="postgres")
    assert sql == (
        "NULLIF(workflow_name, '') COLLATE \"C\" DESC NULLS LAST, "
        "workflow_version ASC NULLS FIRST, "
        "NULLIF(workflow_id, '') COLLATE \"C\" ASC NULLS FIRST"
    )


def test_no_filter_renders_a_true_condition() -> None:
    assert render_where(None, (), dialect="sqlite") == ("1 = 1", [])


def test_values_are_bound_never_spliced() -> None:
    node = search.parse_query('workflowId = "x\'); DROP TABLE workflow; --"')
    where, params = render_where(node, (), dialect="sqlite")
    assert "DROP" not in where
    assert params == ["x'); DROP TABLE workflow; --"]
