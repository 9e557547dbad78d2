"""Flow operators: SWITCH, DECISION, FORK_JOIN/JOIN, FORK_JOIN_DYNAMIC (every input form),
DO_WHILE (condition, items, nesting), DYNAMIC. Both twins; scripts run for real."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import pytest

from core import decisions as ev
from core.enums import TaskResultStatus, TaskStatus, WorkflowStatus
from core.models import WorkflowDef
from tests.hotpath.defs import simple, tdef, wdef
from tests.hotpath.driver import Driver

R = TaskResultStatus


def run(
    decider: ModuleType,
    tasks: list[dict[str, Any]],
    input: dict[str, Any] | None = None,
    workers: dict[str, Any] | None = None,
    others: Sequence[WorkflowDef] = (),
    **kw: Any,
) -> tuple[Driver, str]:
    defn = wdef(tasks, name="flow")
    d = Driver(
        decider,
        workflow_defs=[defn, *others],
        workers=workers or {"*": lambda t: {"ref": t.reference_task_name}},
        **kw,
    )
    wid = d.start("flow", input or {})
    d.run()
    return d, wid


def switch(
    ref: str,
    cases: dict[str, list[dict[str, Any]]],
    default: Sequence[dict[str, Any]] = (),
    evaluator: str = "value-param",
    expression: str = "c",
    **kw: Any,
) -> dict[str, Any]:
    return {
        "name": ref,
        "taskReferenceName": ref,
        "type": "SWITCH",
        "evaluatorType": evaluator,
        "expression": expression,
        "decisionCases": cases,
        "defaultCase": list(default),
        **kw,
    }


@pytest.mark.parametrize(
    ("value", "expected", "selected"),
    [
        ("a", ["sw", "ta", "after"], "a"),
        ("zz", ["sw", "td", "after"], "zz"),
        (1, ["sw", "t1", "after"], "1"),
        (True, ["sw", "ttrue", "after"], "true"),
        ("empty", ["sw", "after"], "empty"),
        (None, ["sw", "td", "after"], "null"),
    ],
)
def test_switch_value_param(
    decider: ModuleType, value: Any, expected: list[str], selected: str
) -> None:
    tasks = [
        switch(
            "sw",
            {"a": [simple("ta")], "1": [simple("t1")], "true": [simple("ttrue")], "empty": []},
            default=[simple("td")],
            inputParameters={"c": "${workflow.input.v}"},
        ),
        simple("after"),
    ]
    d, wid = run(decider, tasks, {"v": value})
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == expected
    sw = d.task(wid, "sw")
    assert sw.status is TaskStatus.COMPLETED
    assert sw.output_data == {"evaluationResult": [selected], "selectedCase": selected}
    assert sw.input_data["case"] == selected
    assert sw.input_data.get("hasChildren") == ("true" if len(expected) == 3 else None)


def test_switch_javascript_asks_the_engine_for_the_value(decider: ModuleType) -> None:
    tasks = [
        switch(
            "sw",
            {"big": [simple("tb")]},
            default=[simple("ts")],
            evaluator="javascript",
            expression="$.n > 10 ? 'big' : 'small'",
            inputParameters={"n": "${workflow.input.n}"},
        )
    ]
    d = Driver(decider, workflow_defs=[wdef(tasks, name="flow")])
    decision = decider.decide(wf := _fresh(tasks, {"n": 42}), ev.StartWorkflow(), d.env, 1)
    [script] = decision.actions
    assert isinstance(script, ev.EvaluateScript)
    assert (script.language, script.script, script.bindings) == (
        "javascript",
        "$.n > 10 ? 'big' : 'small'",
        {"n": 42},
    )
    assert wf.tasks[0].status is TaskStatus.IN_PROGRESS
    decider.decide(wf, ev.ScriptResult(task_id=script.task_id, value="big"), d.env, 2)
    assert [t.reference_task_name for t in wf.tasks] == ["sw", "tb"]


def test_switch_script_error_fails_the_workflow(decider: ModuleType) -> None:
    tasks = [switch("sw", {"x": [simple("tx")]}, evaluator="javascript", expression="nope(")]
    d, wid = run(decider, tasks)
    sw = d.task(wid, "sw")
    assert sw.status is TaskStatus.FAILED
    assert isinstance(sw.reason_for_incompletion, str)
    assert "SyntaxError" in sw.reason_for_incompletion
    assert d.workflows[wid].status is WorkflowStatus.FAILED


def _fresh(tasks: list[dict[str, Any]], input: dict[str, Any]) -> Any:
    from tests.hotpath.defs import workflow

    return workflow(wdef(tasks, name="flow"), input)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, ["dec", "one", "end"]), (2, ["dec", "other", "end"]), ("e", ["dec", "other", "end"])],
)
def test_decision_case_value_param(decider: ModuleType, value: Any, expected: list[str]) -> None:
    tasks = [
        {
            "name": "dec",
            "taskReferenceName": "dec",
            "type": "DECISION",
            "caseValueParam": "k",
            "inputParameters": {"k": "${workflow.input.k}"},
            "decisionCases": {"1": [simple("one")], "e": []},
            "defaultCase": [simple("other")],
        },
        simple("end"),
    ]
    d, wid = run(decider, tasks, {"k": value})
    assert d.refs(wid) == expected  # DECISION: an empty case list takes the default
    assert d.task(wid, "dec").output_data == {"caseOutput": [str(value)]}


def test_decision_case_expression(decider: ModuleType) -> None:
    tasks = [
        {
            "name": "dec",
            "taskReferenceName": "dec",
            "type": "DECISION",
            "caseExpression": "$.k == 'a' ? 'yes' : 'no'",
            "inputParameters": {"k": "${workflow.input.k}"},
            "decisionCases": {"yes": [simple("y")], "no": [simple("n")]},
        }
    ]
    d, wid = run(decider, tasks, {"k": "a"})
    assert d.refs(wid) == ["dec", "y"]


def fork(ref: str, branches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    return {"name": ref, "taskReferenceName": ref, "type": "FORK_JOIN", "forkTasks": branches}


def join(ref: str, on: list[str]) -> dict[str, Any]:
    return {"name": ref, "taskReferenceName": ref, "type": "JOIN", "joinOn": on}


def test_fork_creates_fork_branches_and_join_together(decider: ModuleType) -> None:
    tasks = [
        fork("f", [[simple("a1"), simple("a2")], [simple("b1")]]),
        join("j", ["a2", "b1"]),
        simple("z"),
    ]
    wf = _fresh(tasks, {})
    decision = decider.decide(wf, ev.StartWorkflow(), ev.DeciderEnv(), 5)
    assert [(t.reference_task_name, t.task_type, t.status.value) for t in wf.tasks] == [
        ("f", "FORK", "COMPLETED"),
        ("a1", "a1", "SCHEDULED"),
        ("b1", "b1", "SCHEDULED"),
        ("j", "JOIN", "IN_PROGRESS"),
    ]
    assert wf.tasks[3].input_data == {"joinOn": ["a2", "b1"]}
    assert [a.queue for a in decision.actions] == ["a1", "b1"]


def test_join_waits_only_for_join_on(decider: ModuleType) -> None:
    tasks = [fork("f", [[simple("a")], [simple("slow")]]), join("j", ["a"]), simple("z")]
    d = Driver(decider, workflow_defs=[wdef(tasks, name="flow")])
    wid = d.start("flow", {})
    a = d.poll("a")
    d.complete(a, {"x": 1})
    assert d.task(wid, "j").status is TaskStatus.COMPLETED
    assert d.task(wid, "j").output_data == {"a": {"x": 1}}
    assert d.refs(wid)[-1] == "z"
    assert d.task(wid, "slow").status is TaskStatus.SCHEDULED


def test_optional_branch_failure_gives_join_completed_with_errors(decider: ModuleType) -> None:
    tasks = [
        fork("f", [[simple("a", optional=True, retryCount=0)], [simple("b")]]),
        join("j", ["a", "b"]),
    ]
    d, wid = run(decider, tasks, workers={"a": lambda t: (R.FAILED, {}, "x"), "*": lambda t: {}})
    assert d.task(wid, "a").status is TaskStatus.COMPLETED_WITH_ERRORS
    assert d.task(wid, "j").status is TaskStatus.COMPLETED_WITH_ERRORS
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED


def test_branch_failure_fails_workflow_and_cancels_others(decider: ModuleType) -> None:
    tasks = [fork("f", [[simple("a", retryCount=0)], [simple("b")]]), join("j", ["a", "b"])]
    d = Driver(decider, workflow_defs=[wdef(tasks, name="flow")])
    wid = d.start("flow", {})
    d.complete(d.poll("a"), status=R.FAILED, reason="bad")
    assert d.workflows[wid].status is WorkflowStatus.FAILED
    assert d.task(wid, "b").status is TaskStatus.CANCELED
    assert d.task(wid, "j").status is TaskStatus.CANCELED
    assert d.queues["b"] == {}  # the queued branch was dequeued


def test_empty_join_on_completes_at_once(decider: ModuleType) -> None:
    d, wid = run(decider, [fork("f", [[simple("a")]]), join("j", []), simple("z")])
    assert d.refs(wid) == ["f", "a", "j", "z"]
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED


def test_fork_without_join_fails(decider: ModuleType) -> None:
    d, wid = run(decider, [fork("f", [[simple("a")]]), simple("z")])
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.FAILED
    assert wf.reason_for_incompletion == "Fork task definition is not followed by a join task"


def dyn_fork(ref: str, **kw: Any) -> dict[str, Any]:
    return {"name": ref, "taskReferenceName": ref, "type": "FORK_JOIN_DYNAMIC", **kw}


def test_dynamic_fork_same_task_for_every_input(decider: ModuleType) -> None:
    tasks = [
        dyn_fork(
            "df",
            inputParameters={"forkTaskName": "resize", "forkTaskInputs": "${workflow.input.items}"},
        ),
        join("dj", []),
        simple("z", inputParameters={"all": "${dj.output}"}),
    ]
    d, wid = run(
        decider, tasks, {"items": [{"w": 10}, 20]}, workers={"*": lambda t: {"in": t.input_data}}
    )
    assert d.refs(wid) == ["df", "_resize_0", "_resize_1", "dj", "z"]
    assert d.task(wid, "_resize_0").input_data == {"w": 10, "__index": 0}
    assert d.task(wid, "_resize_1").input_data == {"input": 20, "__index": 1}
    assert d.task(wid, "dj").input_data["joinOn"] == ["_resize_0", "_resize_1"]
    assert d.task(wid, "z").input_data["all"] == {
        "_resize_0": {"in": {"w": 10, "__index": 0}},
        "_resize_1": {"in": {"input": 20, "__index": 1}},
    }


def test_dynamic_fork_of_sub_workflows(decider: ModuleType) -> None:
    child = wdef([simple("c")], name="child", outputParameters={"got": "${workflow.input.n}"})
    tasks = [
        dyn_fork(
            "df",
            inputParameters={
                "forkTaskWorkflow": "child",
                "forkTaskWorkflowVersion": "1",
                "forkTaskInputs": [{"n": 1}, {"n": 2}],
            },
        ),
        join("dj", []),
    ]
    d, wid = run(decider, tasks, others=[child])
    assert d.refs(wid) == ["df", "_child_0", "_child_1", "dj"]
    out = d.task(wid, "dj").output_data
    assert out["_child_0"]["got"] == 1
    assert out["_child_1"]["got"] == 2
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED


def test_dynamic_fork_legacy_form(decider: ModuleType) -> None:
    tasks = [
        dyn_fork(
            "df",
            dynamicForkJoinTasksParam="spec",
            inputParameters={"spec": "${workflow.input.spec}"},
        ),
        join("dj", []),
    ]
    spec = {
        "dynamicTasks": [
            {"taskName": "t", "referenceName": "r1", "input": {"a": 1}},
            {"taskName": "t", "referenceName": "r2", "input": {"a": 2}},
        ]
    }
    d, wid = run(decider, tasks, {"spec": spec})
    assert d.refs(wid) == ["df", "r1", "r2", "dj"]
    assert d.task(wid, "r2").input_data == {"a": 2}


def test_dynamic_fork_with_no_tasks_completes(decider: ModuleType) -> None:
    tasks = [
        dyn_fork(
            "df",
            dynamicForkTasksParam="ts",
            dynamicForkTasksInputParamName="ins",
            inputParameters={"ts": [], "ins": {}},
        ),
        join("dj", []),
        simple("z"),
    ]
    d, wid = run(decider, tasks)
    assert d.refs(wid) == ["df", "dj", "z"]


@pytest.mark.parametrize(
    ("dynamic", "reason"),
    [
        ([{"name": "x"}], "A dynamically forked task has no taskReferenceName"),
        (
            [{"name": "x", "taskReferenceName": "r"}, {"name": "y", "taskReferenceName": "r"}],
            "Duplicate task references in dynamic fork: ['r', 'r']",
        ),
        ("not a list", "Input 'ts' of a dynamic fork must be a list of tasks"),
    ],
)
def test_dynamic_fork_bad_input_fails_workflow(
    decider: ModuleType, dynamic: Any, reason: str
) -> None:
    tasks = [
        dyn_fork(
            "df",
            dynamicForkTasksParam="ts",
            dynamicForkTasksInputParamName="ins",
            inputParameters={"ts": "${workflow.input.ts}", "ins": {}},
        ),
        join("dj", []),
    ]
    d, wid = run(decider, tasks, {"ts": dynamic})
    assert d.workflows[wid].status is WorkflowStatus.FAILED
    assert d.workflows[wid].reason_for_incompletion == reason


def loop(ref: str, body: list[dict[str, Any]], condition: str = "", **kw: Any) -> dict[str, Any]:
    return {
        "name": ref,
        "taskReferenceName": ref,
        "type": "DO_WHILE",
        "loopCondition": condition,
        "loopOver": body,
        **kw,
    }


def test_do_while_condition_runs_body_until_false(decider: ModuleType) -> None:
    tasks = [
        loop(
            "lp",
            [simple("b", inputParameters={"i": "${lp.output.iteration}"})],
            "$.lp['iteration'] < $.max",
            inputParameters={"max": 3},
        ),
        simple("after"),
    ]
    d, wid = run(decider, tasks, workers={"*": lambda t: {"i": t.input_data.get("i")}})
    assert d.refs(wid) == ["lp", "b__1", "b__2", "b__3", "after"]
    assert [d.task(wid, f"b__{i}").input_data["i"] for i in (1, 2, 3)] == [1, 2, 3]
    lp = d.task(wid, "lp")
    assert lp.output_data == {
        "iteration": 3,
        "1": {"b": {"i": 1}},
        "2": {"b": {"i": 2}},
        "3": {"b": {"i": 3}},
    }
    assert lp.iteration == 3


def test_do_while_items_mode(decider: ModuleType) -> None:
    tasks = [
        loop(
            "lp",
            [simple("b", inputParameters={"item": "${lp.output.loopItem}"})],
            items="${workflow.input.xs}",
        )
    ]
    d, wid = run(
        decider, tasks, {"xs": ["p", "q"]}, workers={"*": lambda t: {"saw": t.input_data["item"]}}
    )
    assert d.refs(wid) == ["lp", "b__1", "b__2"]
    lp = d.task(wid, "lp")
    assert (
        lp.output_data["loopIndex"],
        lp.output_data["loopItem"],
        lp.output_data["iteration"],
    ) == (1, "q", 2)
    assert lp.output_data["2"] == {"b": {"saw": "q"}}


def test_do_while_empty_items_completes_with_zero_iterations(decider: ModuleType) -> None:
    d, wid = run(
        decider, [loop("lp", [simple("b")], items="${workflow.input.xs}"), simple("z")], {"xs": []}
    )
    assert d.refs(wid) == ["lp", "z"]
    assert d.task(wid, "lp").output_data == {"iteration": 0}


def test_nested_do_while_naming(decider: ModuleType) -> None:
    inner = loop("in", [simple("t")], "$.in['iteration'] < 2")
    tasks = [loop("out", [inner, simple("u")], "$.out['iteration'] < 2")]
    d, wid = run(decider, tasks)
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == [
        "out",
        "in__1",
        "t__1__1",
        "t__1__2",
        "u__1",
        "in__2",
        "t__2__1",
        "t__2__2",
        "u__2",
    ]
    assert d.task(wid, "t__2__2").iteration == 2


def test_do_while_body_failure_fails_loop(decider: ModuleType) -> None:
    tasks = [loop("lp", [simple("b", permissive=True, retryCount=0)], "true")]
    d, wid = run(decider, tasks, workers={"*": lambda t: (R.FAILED, {}, "broke")})
    lp = d.task(wid, "lp")
    assert (lp.status, lp.reason_for_incompletion) == (TaskStatus.FAILED, "broke")
    assert d.workflows[wid].status is WorkflowStatus.FAILED


def test_do_while_condition_error_is_terminal(decider: ModuleType) -> None:
    d, wid = run(decider, [loop("lp", [simple("b")], "throw new Error('bad cond')")])
    lp = d.task(wid, "lp")
    assert lp.status is TaskStatus.FAILED_WITH_TERMINAL_ERROR
    assert isinstance(lp.reason_for_incompletion, str)
    assert "bad cond" in lp.reason_for_incompletion


def test_dynamic_task_resolves_type_and_task_def(decider: ModuleType) -> None:
    tasks = [
        {
            "name": "dyn",
            "taskReferenceName": "d",
            "type": "DYNAMIC",
            "dynamicTaskNameParam": "which",
            "inputParameters": {"which": "${workflow.input.t}", "v": 1},
        },
        simple("z"),
    ]
    d = Driver(
        decider,
        workflow_defs=[wdef(tasks, name="flow")],
        task_defs=[tdef("resize", retryCount=1, retryDelaySeconds=0)],
    )
    wid = d.start("flow", {"t": "resize"})
    row = d.task(wid, "d")
    assert (row.task_type, row.task_def_name, row.input_data) == (
        "resize",
        "resize",
        {"which": "resize", "v": 1},
    )
    assert "resize" in d.queues
    d.complete(d.poll("resize"), status=R.FAILED)
    assert d.task(wid, "d").retry_count == 1  # the resolved TaskDef's retryCount applies
    d.complete(d.poll("resize"))
    assert d.refs(wid) == ["d", "d", "z"]


def test_dynamic_task_without_name_fails(decider: ModuleType) -> None:
    tasks = [
        {
            "name": "dyn",
            "taskReferenceName": "d",
            "type": "DYNAMIC",
            "dynamicTaskNameParam": "which",
            "inputParameters": {},
        }
    ]
    d, wid = run(decider, tasks)
    assert d.workflows[wid].status is WorkflowStatus.FAILED
    reason = d.workflows[wid].reason_for_incompletion
    assert isinstance(reason, str)
    assert reason.startswith(
        "Cannot map a dynamic task based on the parameter and input. Parameter= which"
    )


def test_do_while_keep_last_n_prunes_old_iterations(decider: ModuleType) -> None:
    inner = loop("in", [simple("t")], "$.in['iteration'] < 2")
    tasks = [
        loop("lp", [simple("b"), inner], "$.lp['iteration'] < 4", inputParameters={"keepLastN": 2})
    ]
    d, wid = run(decider, tasks)
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED
    # Iterations 1 and 2 (and the inner loop's rows inside them) are gone.
    assert d.refs(wid) == [
        "lp",
        "b__3",
        "in__3",
        "t__3__1",
        "t__3__2",
        "b__4",
        "in__4",
        "t__4__1",
        "t__4__2",
    ]
    lp = d.task(wid, "lp")
    assert sorted(k for k in lp.output_data if k.isdigit()) == ["3", "4"]
    removed = [rid for _, _, dec in d.decisions for rid in dec.removed_task_ids]
    assert len(removed) == 8
    assert not set(removed) & {t.task_id for t in wf.tasks}
