"""The scripts in Conductor's own sample definitions evaluate as Conductor would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.scripting import ScriptError, check_jq, evaluate_js, evaluate_lambda, js_truthy, run_jq


def _load(shared_dir: Path, name: str) -> Any:
    return json.loads((shared_dir / "conductor-samples" / "workflows" / name).read_text())


def _tasks(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for task in tasks:
        yield task
        for branch in (task.get("decisionCases") or {}).values():
            yield from _tasks(branch)
        yield from _tasks(task.get("defaultCase") or [])
        yield from _tasks(task.get("loopOver") or [])
        for fork in task.get("forkTasks") or []:
            yield from _tasks(fork)


def _by_ref(definition: dict[str, Any], ref: str) -> dict[str, Any]:
    return next(t for t in _tasks(definition["tasks"]) if t["taskReferenceName"] == ref)


# ------------------------------------------------------------ do_while_with_decision_task


def test_do_while_with_decision_inline_uses_list_get(shared_dir: Path) -> None:
    definition = _load(shared_dir, "do_while_with_decision_task.json")
    task = _by_ref(definition, "GetNumberAtIndex")
    params = task["inputParameters"]
    # The task input as the engine would resolve it on iteration 2.
    bindings = {
        "evaluatorType": params["evaluatorType"],
        "expression": params["expression"],
        "list": [{"number": 5}, {"number": -3}, {"number": 8}],
        "iterator": 2,
    }
    assert evaluate_js(params["expression"], bindings) == {"number": -3}


def test_do_while_with_decision_switch_expression(shared_dir: Path) -> None:
    definition = _load(shared_dir, "do_while_with_decision_task.json")
    task = _by_ref(definition, "SwitchTask")
    assert task["evaluatorType"] == "javascript"
    # SWITCH's case key is the Java string of the result.
    assert evaluate_js(task["expression"], {"param": 5}) is True
    assert evaluate_js(task["expression"], {"param": -3}) is False
    assert "true" in task["decisionCases"]


def test_do_while_with_decision_compute_and_loop_condition(shared_dir: Path) -> None:
    definition = _load(shared_dir, "do_while_with_decision_task.json")
    compute = _by_ref(definition, "ComputeNumber")["inputParameters"]
    assert evaluate_js(compute["expression"], {**compute, "number": 5}) == 15
    loop = _by_ref(definition, "LoopTask")
    condition = loop["loopCondition"]
    items = [{"number": 1}, {"number": 2}]
    assert js_truthy(evaluate_js(condition, {"list": items, "LoopTask": {"iteration": 1}}))
    assert not js_truthy(evaluate_js(condition, {"list": items, "LoopTask": {"iteration": 2}}))


# ------------------------------------------------------------ the other samples


def test_do_while_integration_loop_condition(shared_dir: Path) -> None:
    loop = _by_ref(_load(shared_dir, "do_while_integration_test.json"), "loopTask")
    condition = loop["loopCondition"]
    assert evaluate_js(condition, {"value": 2, "loopTask": {"iteration": 1}}) is True
    assert evaluate_js(condition, {"value": 2, "loopTask": {"iteration": 2}}) is False


def test_json_jq_transform_sample(shared_dir: Path) -> None:
    definition = _load(shared_dir, "json_jq_transform_result_integration_test.json")
    first = _by_ref(definition, "json_jq_1")["inputParameters"]
    assert run_jq(first["queryExpression"], first) == ("CREATE", ["CREATE"])
    assert run_jq(first["queryExpression"], {**first, "data": [1]}) == ("EXISTS", ["EXISTS"])
    second = _by_ref(definition, "json_jq_2")["inputParameters"]
    names = ["redeliver", "redeliver_from_validation_error", "redelivery"]
    assert run_jq(second["queryExpression"], second) == (names, [names])


def test_decision_case_expression_sample(shared_dir: Path) -> None:
    definition = _load(shared_dir, "json_jq_transform_result_integration_test.json")
    expression = _by_ref(definition, "decide_2")["caseExpression"]
    actions = ["redeliver", "redelivery"]
    assert (
        evaluate_js(expression, {"availableActions": actions, "requestedAction": "redelivery"})
        == "true"
    )
    assert (
        evaluate_js(expression, {"availableActions": actions, "requestedAction": "cancel"})
        == "false"
    )


def test_lambda_sample(shared_dir: Path) -> None:
    task = _by_ref(_load(shared_dir, "terminate_task_failed_workflow_integration.json"), "lambda0")
    script = task["inputParameters"]["scriptExpression"]
    assert evaluate_lambda(script, {"input": {"a": 1}, "scriptExpression": script}) == {
        "testvalue": True
    }
    assert evaluate_lambda(script, {"input": {"a": 2}}) == {"testvalue": False}


def test_event_handler_condition_sample(shared_dir: Path) -> None:
    handler = _load(shared_dir, "sqs-complete-wait-event-handler.json")
    assert js_truthy(evaluate_js(handler["condition"], {"any": "payload"})) is True


def _scripts(definition: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for task in _tasks(definition.get("tasks", [])):
        params = task.get("inputParameters") or {}
        if (
            task.get("type") == "INLINE"
            and params.get("evaluatorType", "javascript") != "value-param"
        ):
            yield "js", params["expression"]
        if task.get("type") == "LAMBDA":
            yield "lambda", params["scriptExpression"]
        if task.get("type") == "SWITCH" and task.get("evaluatorType") in ("javascript", "graaljs"):
            yield "js", task["expression"]
        if task.get("caseExpression"):
            yield "js", task["caseExpression"]
        if task.get("loopCondition"):
            yield "js", task["loopCondition"]
        if task.get("type") == "JSON_JQ_TRANSFORM":
            yield "jq", params["queryExpression"]
    if definition.get("condition"):
        yield "js", definition["condition"]


def test_every_sample_script_compiles(shared_dir: Path) -> None:
    found = 0
    for path in sorted((shared_dir / "conductor-samples").rglob("*.json")):
        document = json.loads(path.read_text())
        for definition in document if isinstance(document, list) else [document]:
            for kind, script in _scripts(definition):
                found += 1
                if kind == "jq":
                    check_jq(script)
                    continue
                source = "function scriptFun(){" + script + "\n}" if kind == "lambda" else script
                # `new Function` parses without running: a syntax error raises here.
                assert evaluate_js("new Function($.src); 'parsed'", {"src": source}) == "parsed", (
                    path
                )
    assert found >= 9


def test_syntax_check_helper_really_rejects_bad_code() -> None:
    with pytest.raises(ScriptError, match="SyntaxError"):
        evaluate_js("new Function($.src); 'parsed'", {"src": "if ( {"})
