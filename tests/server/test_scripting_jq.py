"""jq evaluation: result/resultList, numbers, errors, the compile cache, threads."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings

from server.scripting import ScriptError, check_jq, run_jq
from server.scripting import jq as jq_module
from tests.server.json_values import JSON_VALUES


def test_single_result() -> None:
    assert run_jq(".a | map(.x)", {"a": [{"x": 1}, {"x": 2.5}]}) == ([1, 2.5], [[1, 2.5]])


def test_many_results_first_and_all() -> None:
    assert run_jq(".[]", [3, "b", None]) == (3, [3, "b", None])


def test_no_result_is_none_and_empty_list() -> None:
    assert run_jq("empty", {"a": 1}) == (None, [])
    assert run_jq(".[]", []) == (None, [])


def test_null_result_is_kept_in_the_list() -> None:
    assert run_jq(".missing", {}) == (None, [None])


def test_whole_input_document_is_the_jq_input() -> None:
    # JSON_JQ_TRANSFORM: `.key` reads the task's other input parameters.
    doc = {"data": [1], "queryExpression": ".data"}
    assert run_jq(".data | length", doc) == (1, [1])
    assert run_jq(".queryExpression", doc) == (".data", [".data"])


def test_numbers_follow_the_int64_rule() -> None:
    first, _ = run_jq("[1, 1.5, 3 / 2, 4 / 2, 1e20, pow(2; 62)]", None)
    assert first == [1, 1.5, 1.5, 2, 1e20, 2**62]
    assert [type(x) for x in first] == [int, float, float, int, float, int]


def test_trailing_comment_and_definitions() -> None:
    assert run_jq(".a # pick a", {"a": 5}) == (5, [5])
    assert run_jq("def inc: . + 1; .[] | inc", [1, 2]) == (2, [2, 3])


def test_top_level_module_directive_runs_as_written() -> None:
    assert run_jq('module {"name": "m"}; .[] * 2', [1, 2**70]) == (2, [2, 2.0**71])


def test_compile_error_carries_jqs_message() -> None:
    with pytest.raises(ScriptError) as info:
        run_jq(".a | ", {})
    assert info.value.message.startswith(
        "jq: error: syntax error, unexpected end of file at <top-level>, line 1, column 5:"
    )
    assert info.value.message.endswith("jq: 1 compile error")


def test_check_jq_compiles_without_running() -> None:
    check_jq(".a.b")  # would fail at run time on {"a": 1}, but compiles
    with pytest.raises(ScriptError, match="syntax error"):
        check_jq("map(")


def test_empty_query_is_an_error_not_an_empty_result() -> None:
    with pytest.raises(ScriptError, match="Top-level program not given"):
        run_jq("", {})


def test_runtime_errors() -> None:
    with pytest.raises(ScriptError) as info:
        run_jq(".a.b", {"a": 1})
    assert info.value.message == 'Cannot index number with string ("b")'
    with pytest.raises(ScriptError) as info:
        run_jq('error("boom")', {})
    assert info.value.message == "boom"


def test_non_json_input_is_an_error() -> None:
    with pytest.raises(ScriptError, match="the jq input cannot be encoded as JSON"):
        run_jq(".", {"x": object()})


def test_compiled_programs_and_errors_are_cached_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jq_module, "CACHE_SIZE", 3)
    monkeypatch.setattr(jq_module, "_cache", type(jq_module._cache)())
    compiles: list[str] = []
    real_compile = jq_module._compile

    def counting(query: str) -> Any:
        compiles.append(query)
        return real_compile(query)

    monkeypatch.setattr(jq_module, "_compile", counting)
    for _ in range(3):
        run_jq(".a", {"a": 1})
        with pytest.raises(ScriptError):
            run_jq(".a |", {})
    assert compiles == [".a", ".a |"]
    for query in (".b", ".c", ".d"):
        run_jq(query, {})
    assert list(jq_module._cache) == [".b", ".c", ".d"]
    run_jq(".a", {"a": 1})
    assert compiles == [".a", ".a |", ".b", ".c", ".d", ".a"]


def test_shared_program_from_many_threads() -> None:
    errors: list[BaseException] = []
    results: dict[int, list[Any]] = {}

    def worker(n: int) -> None:
        try:
            results[n] = [run_jq("[.[] * 2] | add", [n, i])[0] for i in range(200)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n in range(4):
        assert results[n] == [2 * (n + i) for i in range(200)]


@settings(max_examples=100, deadline=None)
@given(JSON_VALUES)
def test_property_identity_round_trip(value: Any) -> None:
    assert run_jq(".", value) == (value, [value])


def test_query_must_be_a_string() -> None:
    with pytest.raises(ScriptError, match="the jq query must be a string, not NoneType"):
        run_jq(None, {})  # type: ignore[arg-type]
