"""run_script: the engine's answer to the decider's EvaluateScript action."""

from __future__ import annotations

import msgspec
import pytest

from core.decisions import EvaluateScript, ScriptResult
from server.scripting import run_script


def _action(language: str, script: str, bindings: object) -> EvaluateScript:
    return EvaluateScript(task_id="t1", language=language, script=script, bindings=bindings)


@pytest.mark.parametrize("language", ["javascript", "graaljs", "JavaScript", "js", "ecmascript"])
def test_javascript_and_aliases(language: str) -> None:
    result = run_script(_action(language, "$.a + 1", {"a": 1}))
    assert result == ScriptResult(task_id="t1", value=2)


def test_lambda_wraps_the_body() -> None:
    result = run_script(_action("lambda", "return {doubled: $.n * 2};", {"n": 4}))
    assert result == ScriptResult(task_id="t1", value={"doubled": 8})


def test_jq_value_is_the_transform_output_map() -> None:
    result = run_script(_action("jq", ".xs[] | . * 10", {"xs": [1, 2]}))
    assert result == ScriptResult(task_id="t1", value={"result": 10, "resultList": [10, 20]})
    empty = run_script(_action("jq", "empty", {}))
    assert empty.value == {"result": None, "resultList": []}


def test_script_error_is_an_error_result() -> None:
    result = run_script(_action("javascript", "nope()", {}))
    assert result == ScriptResult(task_id="t1", error="ReferenceError: 'nope' is not defined")
    assert result.timed_out is False


def test_jq_error_is_an_error_result() -> None:
    result = run_script(_action("jq", ".a.b", {"a": 1}))
    assert result.error == 'Cannot index number with string ("b")'
    assert result.value is None


def test_timeout_is_flagged() -> None:
    result = run_script(_action("javascript", "while (true) {}", {}), timeout_s=0.2)
    assert result.timed_out is True
    assert result.error == "the script ran longer than its time limit of 0.2 s"
    assert result.value is None
    # The same thread evaluates normally afterwards.
    assert run_script(_action("javascript", "'after'", {})).value == "after"


def test_unknown_language_is_an_error_result_naming_the_known_ones() -> None:
    result = run_script(_action("python", "1", {}))
    assert result.error == (
        "unknown script language 'python' (known: ecmascript, graaljs, javascript, jq, js, lambda)"
    )


def test_result_survives_the_event_codec() -> None:
    # ScriptResult is a decider event and is persisted/replayed as JSON.
    result = run_script(_action("javascript", "({a: [1, 1.5, null, 'x']})", {}))
    encoded = msgspec.json.encode(result)
    assert msgspec.json.decode(encoded, type=ScriptResult) == result
