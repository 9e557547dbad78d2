"""core.search: the query/sort/freeText parsers and the row evaluator.

Rules: pure tests, no store. Error messages are asserted word for word, since they are
what an API user sees in the 400 body.
"""

from __future__ import annotations

import pytest

from core.errors import BadRequest
from core.search import (
    DEFAULT_SORT,
    FIELDS,
    And,
    Cond,
    Or,
    SortKey,
    free_text_matches,
    matches,
    parse_free_text,
    parse_query,
    parse_sort,
    sort_rows,
)
from core.store import WorkflowRecord

F = FIELDS


def row(**kw: object) -> WorkflowRecord:
    base: dict[str, object] = {
        "workflow_id": "w1",
        "workflow_name": "order",
        "workflow_version": 1,
        "status": "RUNNING",
        "create_time": 100,
        "update_time": 100,
    }
    base.update(kw)
    return WorkflowRecord(**base)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- parse_query


@pytest.mark.parametrize(
    ("query", "ast"),
    [
        ("status = 'FAILED'", Cond(F["status"], "=", ("FAILED",))),
        ('status = "FAILED"', Cond(F["status"], "=", ("FAILED",))),
        ("status = FAILED", Cond(F["status"], "=", ("FAILED",))),
        ("status<>FAILED", Cond(F["status"], "!=", ("FAILED",))),
        ("startTime > 17", Cond(F["startTime"], ">", (17,))),
        ("startTime > '17'", Cond(F["startTime"], ">", (17,))),
        ("version < -1", Cond(F["version"], "<", (-1,))),
        ("version IN (1, 2,3)", Cond(F["version"], "IN", (1, 2, 3))),
        ("status in ('A', \"B\", C)", Cond(F["status"], "IN", ("A", "B", "C"))),
        ("endTime BETWEEN 1 AND 5", Cond(F["endTime"], "BETWEEN", (1, 5))),
        ("correlationId IS NULL", Cond(F["correlationId"], "IS NULL")),
        ("correlationId is not null", Cond(F["correlationId"], "IS NOT NULL")),
        ("workflowType STARTS_WITH 'ord'", Cond(F["workflowType"], "STARTS_WITH", ("ord",))),
        ("WORKFLOWTYPE = x", Cond(F["workflowType"], "=", ("x",))),
        (r"workflowId = 'it\'s'", Cond(F["workflowId"], "=", ("it's",))),
        (r'workflowId = "say \"hi\""', Cond(F["workflowId"], "=", ('say "hi"',))),
        ("workflowId = 'a = (b)'", Cond(F["workflowId"], "=", ("a = (b)",))),
        ("workflowId = ''", Cond(F["workflowId"], "=", ("",))),
    ],
)
def test_single_conditions(query: str, ast: Cond) -> None:
    assert parse_query(query) == ast


def test_boolean_operators_group_to_the_right_like_conductor() -> None:
    a = Cond(F["status"], "=", ("A",))
    b = Cond(F["status"], "=", ("B",))
    c = Cond(F["version"], "=", (3,))
    assert parse_query("status = A AND status = B OR version = 3") == And(a, Or(b, c))
    assert parse_query("status = A OR status = B AND version = 3") == Or(a, And(b, c))
    assert parse_query("(status = A AND status = B) OR version = 3") == Or(And(a, b), c)
    assert parse_query("status = A and (status = B or version = 3)") == And(a, Or(b, c))


@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_blank_query_matches_everything(query: str) -> None:
    assert parse_query(query) is None
    assert matches(None, row())


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "status",
            "query: expected an operator (=, !=, >, <, IN, BETWEEN, IS, STARTS_WITH) "
            "at position 6, found the end of the query",
        ),
        (
            "status ~ 'x'",
            "query: expected an operator (=, !=, >, <, IN, BETWEEN, IS, "
            "STARTS_WITH) at position 7, found '~'",
        ),
        (
            "status =",
            "query: expected a value for status at position 8, found the end of the query",
        ),
        ("= 'x'", "query: expected a field name or '(' at position 0, found '='"),
        (
            "colour = 'red'",
            "query: unknown field 'colour' at position 0: use one of "
            "workflowType, workflowId, correlationId, status, parentWorkflowId, "
            "startTime, updateTime, endTime, version",
        ),
        (
            "status = 'x' status = 'y'",
            "query: expected AND, OR or the end of the query at position 13, found 'status'",
        ),
        (
            "status = 'x' AND",
            "query: expected a field name or '(' at position 16, found the end of the query",
        ),
        (
            "(status = 'x'",
            "query: expected ')' or AND/OR at position 13, found the end of the query",
        ),
        (
            "status = 'x')",
            "query: expected AND, OR or the end of the query at position 12, found ')'",
        ),
        ("status IN 'x'", "query: expected '(' to open the IN list at position 10, found 'x'"),
        (
            "status IN ('x' 'y')",
            "query: expected ',' or ')' in the IN list at position 15, found 'y'",
        ),
        (
            "version BETWEEN 1 OR 2",
            "query: expected AND between the two BETWEEN bounds at position 18, found 'OR'",
        ),
        ("endTime IS 5", "query: expected NULL or NOT NULL after IS at position 11, found '5'"),
        (
            "startTime > yesterday",
            "query: startTime at position 12 takes an integer "
            "(epoch milliseconds for times), got 'yesterday'",
        ),
        (
            "version STARTS_WITH 1",
            "query: STARTS_WITH at position 8 needs a text field; version is numeric: use > and <",
        ),
        (
            "status = 'open",
            "query: string opened with ' at position 9 is never closed: add a closing '",
        ),
    ],
)
def test_malformed_queries_name_the_position_and_the_fix(query: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_query(query)
    assert info.value.message == message
    assert info.value.http_status == 400


# ---------------------------------------------------------------------- parse_sort


def test_sort_keys() -> None:
    assert parse_sort("startTime:DESC|workflowType") == (
        SortKey(F["startTime"], True),
        SortKey(F["workflowType"], False),
    )
    assert parse_sort(" status : asc ") == (SortKey(F["status"], False),)
    assert parse_sort("") == DEFAULT_SORT == (SortKey(F["startTime"], True),)


@pytest.mark.parametrize(
    ("sort", "message"),
    [
        (
            "size:ASC",
            "sort: unknown field 'size': use one of workflowType, workflowId, "
            "correlationId, status, parentWorkflowId, startTime, updateTime, endTime, "
            "version",
        ),
        ("status:DOWN", "sort: order for status must be ASC or DESC, got 'DOWN'"),
        (
            "status|",
            "sort: unknown field '': use one of workflowType, workflowId, "
            "correlationId, status, parentWorkflowId, startTime, updateTime, endTime, "
            "version",
        ),
    ],
)
def test_bad_sort(sort: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_sort(sort)
    assert info.value.message == message


# ---------------------------------------------------------------------- evaluation


@pytest.mark.parametrize(
    ("query", "fields", "expected"),
    [
        # Null handling: None and "" are null for text fields, 0 for endTime.
        ("correlationId IS NULL", {"correlation_id": None}, True),
        ("correlationId IS NULL", {"correlation_id": ""}, True),
        ("correlationId IS NULL", {"correlation_id": "c"}, False),
        ("endTime IS NULL", {"end_time": 0}, True),
        ("endTime IS NOT NULL", {"end_time": 5}, True),
        ("correlationId != 'c'", {"correlation_id": None}, True),
        ("correlationId = 'c'", {"correlation_id": None}, False),
        ("correlationId STARTS_WITH ''", {"correlation_id": None}, False),
        ("endTime < 10", {"end_time": 0}, False),
        ("endTime BETWEEN 0 AND 10", {"end_time": 0}, False),
        # Wildcards in = and !=; literal in STARTS_WITH and IN.
        ("workflowType = 'or*'", {}, True),
        ("workflowType = '*d*'", {}, True),
        ("workflowType = 'o*x'", {}, False),
        ("workflowType != 'or*'", {}, False),
        ("workflowType = 'ord'", {}, False),
        ("workflowType IN ('or*')", {}, False),
        ("workflowType STARTS_WITH 'or*'", {"workflow_name": "or*der"}, True),
        ("workflowType STARTS_WITH 'or*'", {}, False),
        ("workflowType = 'o.der'", {}, False),
        # Exclusive ranges, inclusive BETWEEN; numbers compare as numbers.
        ("startTime > 100", {}, False),
        ("startTime > 99", {}, True),
        ("startTime < 101", {}, True),
        ("startTime BETWEEN 100 AND 100", {}, True),
        ("version > 9", {"workflow_version": 10}, True),
        ("status > 'A'", {}, True),
        ("updateTime = 100 AND (version = 2 OR status = RUNNING)", {}, True),
        ("parentWorkflowId = 'p'", {"parent_workflow_id": "p"}, True),
    ],
)
def test_matches(query: str, fields: dict[str, object], expected: bool) -> None:
    assert matches(parse_query(query), row(**fields)) is expected


def test_free_text_terms() -> None:
    assert parse_free_text("*") == ()
    assert parse_free_text("") == ()
    assert parse_free_text("  Foo  'Bar' ** ") == ("foo", "bar")
    r = row(search_text='{"customer":"Zoë Smith"}', correlation_id="Corr-9")
    assert free_text_matches(parse_free_text("zoË"), r)
    assert free_text_matches(parse_free_text("smith corr-9"), r)
    assert free_text_matches(parse_free_text("cust*smith"), r)
    assert free_text_matches(parse_free_text("W1 ORDER"), r)
    assert not free_text_matches(parse_free_text("smith jones"), r)
    assert free_text_matches((), r)


def test_sort_rows_null_first_then_tiebreak_by_id() -> None:
    rows = [
        row(workflow_id="b", correlation_id="x"),
        row(workflow_id="c", correlation_id=None),
        row(workflow_id="a", correlation_id="x"),
        row(workflow_id="d", correlation_id=""),
    ]
    asc = sort_rows(rows, parse_sort("correlationId:ASC"))
    assert [r.workflow_id for r in asc] == ["c", "d", "a", "b"]
    desc = sort_rows(rows, parse_sort("correlationId:DESC"))
    assert [r.workflow_id for r in desc] == ["a", "b", "c", "d"]
