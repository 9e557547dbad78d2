"""Request accessors: query parsing and JSON bodies fail as 400s naming the problem."""

from __future__ import annotations

from urllib.parse import parse_qsl

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import DefinitionError
from core.models import TaskResult
from server.http import Request
from server.http.errors import QueryParameterError, error_body


def req(query: str = "", body: bytes = b"") -> Request:
    return Request("GET", "/x", query, {}, body)


@pytest.mark.parametrize("raw", ["true", "True", "TRUE", "1", "yes", "on"])
def test_query_bool_true(raw: str) -> None:
    assert req(f"flag={raw}").query_bool("flag", False) is True


@pytest.mark.parametrize("raw", ["false", "False", "FALSE", "0", "no", "off"])
def test_query_bool_false(raw: str) -> None:
    assert req(f"flag={raw}").query_bool("flag", True) is False


def test_query_bool_absent_or_empty_is_default() -> None:
    assert req("").query_bool("flag", True) is True
    assert req("flag=").query_bool("flag", False) is False


def test_query_bool_garbage_names_the_parameter() -> None:
    with pytest.raises(QueryParameterError) as info:
        req("includeTasks=yep").query_bool("includeTasks", True)
    assert info.value.http_status == 400
    assert info.value.message == "Query parameter 'includeTasks' must be true or false, got 'yep'"


def test_query_int() -> None:
    assert req("count=7").query_int("count", 1) == 7
    assert req("count=-3").query_int("count", 1) == -3
    assert req("").query_int("count", 1) == 1
    with pytest.raises(QueryParameterError, match=r"'count' must be an integer, got '7\.5'"):
        req("count=7.5").query_int("count", 1)
    with pytest.raises(QueryParameterError, match="'count' must be at most 10, got 11"):
        req("count=11").query_int("count", 1, maximum=10)


def test_query_multi_dict_and_lists() -> None:
    r = req("status=RUNNING,PAUSED&status=FAILED&q=a%20b+c")
    assert r.query == {"status": ["RUNNING,PAUSED", "FAILED"], "q": ["a b c"]}
    assert r.query_list("status") == ["RUNNING", "PAUSED", "FAILED"]
    assert r.query_str("q") == "a b c"
    assert r.query_str("missing", "dflt") == "dflt"


def test_json_decodes_with_wire_names() -> None:
    body = b'{"workflowInstanceId":"w","taskId":"t","status":"COMPLETED","extra":1}'
    result = req(body=body).json(TaskResult)
    assert (result.workflow_instance_id, result.task_id) == ("w", "t")


def test_json_errors_carry_the_field_path() -> None:
    body = b'{"workflowInstanceId":"w","taskId":"t","logs":[{"log":5}]}'
    with pytest.raises(DefinitionError) as info:
        req(body=body).json(TaskResult)
    err = error_body(info.value, instance="host")
    assert err.status == 400
    assert msgspec.to_builtins(err.validation_errors) == [
        {"path": "logs[0].log", "message": "Expected `str`, got `int`", "invalidValue": None}
    ]


def test_empty_body_is_a_400_not_a_crash() -> None:
    with pytest.raises(DefinitionError) as info:
        req(body=b"").json(TaskResult)
    assert info.value.http_status == 400
    assert "malformed JSON" in info.value.message


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab=&;%+2x ", max_size=20))
def test_query_matches_parse_qsl(raw: str) -> None:
    # The fast path for query strings with nothing to decode must agree with parse_qsl.
    expected: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        expected.setdefault(key, []).append(value)
    assert req(raw).query == expected


def test_error_inside_a_single_exception_group_keeps_its_status() -> None:
    import json

    from core.errors import NotFound
    from server.http.errors import error_response

    wrapped = ExceptionGroup("nursery", [ExceptionGroup("inner", [NotFound("no wf x")])])
    response = error_response(wrapped, instance="h")
    assert response.status == 404
    assert json.loads(response.body)["message"] == "no wf x"


def test_invalid_utf8_in_a_string_is_a_400() -> None:
    # msgspec raises UnicodeDecodeError here, not DecodeError (found by test_http_fuzz).
    with pytest.raises(DefinitionError) as info:
        req(body=b'{"workflowInstanceId":"\x80w","taskId":"t"}').json(TaskResult)
    assert info.value.http_status == 400
    assert info.value.errors[0].message == "malformed JSON: invalid UTF-8 (invalid start byte)"
