"""System tasks: WAIT, HUMAN, TERMINATE, SET_VARIABLE, NOOP, INLINE, LAMBDA,
JSON_JQ_TRANSFORM, HTTP, EVENT, SUB_WORKFLOW, START_WORKFLOW. Both twins."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import pytest

from core import decisions as ev
from core.enums import TaskResultStatus, TaskStatus, WorkflowStatus
from core.models import WorkflowDef
from hotpath.system_tasks import parse_duration_ms, parse_until_ms
from tests.hotpath.defs import T0, simple, status_of, tdef, wdef, workflow
from tests.hotpath.driver import Driver

R = TaskResultStatus


def sys_task(ref: str, type_: str, **kw: Any) -> dict[str, Any]:
    return {"name": ref, "taskReferenceName": ref, "type": type_, **kw}


def start(
    decider: ModuleType,
    tasks: list[dict[str, Any]],
    input: dict[str, Any] | None = None,
    others: Sequence[WorkflowDef] = (),
    **kw: Any,
) -> tuple[Driver, str]:
    d = Driver(decider, workflow_defs=[wdef(tasks, name="sys"), *others], start_ms=T0, **kw)
    return d, d.start("sys", input or {})


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30 seconds", 30_000),
        ("1d 2h 3m 4s", 93_784_000),
        ("5 mins", 300_000),
        ("2 HOURS", 7_200_000),
        ("10s", 10_000),
        ("1 day", 86_400_000),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_duration(text: str, ms: int | None) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2023-11-14 22:13", 1_700_000_000_000 - 20_000),
        ("2023-11-15", 1_700_006_400_000),
        ("2023-11-14 23:13 Europe/Paris", 1_700_000_000_000 - 20_000),
        ("2023-11-14 22:13 UTC", 1_699_999_980_000),
        ("tomorrow", None),
    ],
)
def test_parse_until_in_utc(text: str, ms: int | None) -> None:
    assert parse_until_ms(text) == ms


def test_wait_duration_completes_on_sweep(decider: ModuleType) -> None:
    d, wid = start(
        decider, [sys_task("w", "WAIT", inputParameters={"duration": "10 seconds"}), simple("z")]
    )
    w = d.task(wid, "w")
    assert (w.status, w.wait_timeout) == (TaskStatus.IN_PROGRESS, T0 + 10_000)
    assert d.wakes[wid] == T0 + 10_000
    d.now = T0 + 9_999
    d.decide(wid, ev.Sweep())
    assert w.status is TaskStatus.IN_PROGRESS
    d.now = T0 + 10_000
    d.decide(wid, ev.Sweep())
    assert status_of(w) is TaskStatus.COMPLETED
    assert d.refs(wid) == ["w", "z"]


def test_wait_until_in_the_past_completes_at_once(decider: ModuleType) -> None:
    d, wid = start(decider, [sys_task("w", "WAIT", inputParameters={"until": "2001-01-01 00:00"})])
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            {"duration": "1s", "until": "2030-01-01"},
            "Both 'duration' and 'until' specified. Please provide only one input",
        ),
        ({"until": "someday"}, "Unable to parse the 'until' value 'someday'"),
        ({"duration": "a while"}, "Unable to parse duration 'a while'"),
    ],
)
def test_wait_bad_input_is_terminal(
    decider: ModuleType, params: dict[str, Any], reason: str
) -> None:
    d, wid = start(decider, [sys_task("w", "WAIT", inputParameters=params)])
    w = d.task(wid, "w")
    assert (w.status, w.reason_for_incompletion) == (TaskStatus.FAILED_WITH_TERMINAL_ERROR, reason)
    assert d.workflows[wid].status is WorkflowStatus.FAILED


@pytest.mark.parametrize("kind", ["WAIT", "HUMAN"])
def test_wait_and_human_without_timer_complete_from_outside(decider: ModuleType, kind: str) -> None:
    d, wid = start(decider, [sys_task("h", kind), simple("z")])
    h = d.task(wid, "h")
    assert h.status is TaskStatus.IN_PROGRESS
    assert d.wakes[wid] == 0
    d.complete(h, {"approved": True})
    assert h.output_data == {"approved": True}
    assert d.refs(wid) == ["h", "z"]


@pytest.mark.parametrize(
    ("status", "wf_status"),
    [
        ("COMPLETED", WorkflowStatus.COMPLETED),
        ("FAILED", WorkflowStatus.FAILED),
        ("TERMINATED", WorkflowStatus.TERMINATED),
    ],
)
def test_terminate_task(decider: ModuleType, status: str, wf_status: WorkflowStatus) -> None:
    tasks: list[dict[str, Any]] = [
        {
            "name": "f",
            "taskReferenceName": "f",
            "type": "FORK_JOIN",
            "forkTasks": [
                [simple("slow")],
                [
                    sys_task(
                        "t",
                        "TERMINATE",
                        inputParameters={"terminationStatus": status, "workflowOutput": {"k": 1}},
                    )
                ],
            ],
        },
        {"name": "j", "taskReferenceName": "j", "type": "JOIN", "joinOn": ["slow", "t"]},
    ]
    d, wid = start(decider, tasks)
    wf = d.workflows[wid]
    t = d.task(wid, "t")
    assert wf.status is wf_status
    assert t.status is TaskStatus.COMPLETED
    assert t.output_data == {"k": 1}
    assert wf.output == {"k": 1}
    assert d.task(wid, "slow").status is TaskStatus.CANCELED
    if status != "COMPLETED":
        assert wf.reason_for_incompletion == f"Workflow is {status} by TERMINATE task: {t.task_id}"


def test_terminate_with_invalid_status_fails_the_task(decider: ModuleType) -> None:
    d, wid = start(
        decider, [sys_task("t", "TERMINATE", inputParameters={"terminationStatus": "DONE"})]
    )
    assert d.task(wid, "t").status is TaskStatus.FAILED
    assert (
        d.task(wid, "t").reason_for_incompletion == "given termination status is not valid: 'DONE'"
    )


def test_set_variable_and_size_limit(decider: ModuleType) -> None:
    tasks = [
        sys_task("s", "SET_VARIABLE", inputParameters={"a": 1, "b": "${workflow.input.b}"}),
        simple("z", inputParameters={"a": "${workflow.variables.a}"}),
    ]
    d, wid = start(decider, tasks, {"b": [1, 2]})
    assert d.workflows[wid].variables == {"a": 1, "b": [1, 2]}
    assert d.task(wid, "z").input_data == {"a": 1}
    d2, wid2 = start(
        decider,
        [sys_task("s", "SET_VARIABLE", inputParameters={"big": "${workflow.input.big}"})],
        {"big": "x" * 300_000},
    )
    s = d2.task(wid2, "s")
    assert s.status is TaskStatus.FAILED_WITH_TERMINAL_ERROR
    assert d2.workflows[wid2].variables == {}


def test_noop(decider: ModuleType) -> None:
    d, wid = start(decider, [sys_task("n", "NOOP"), simple("z")])
    assert d.statuses(wid) == [("n", "COMPLETED"), ("z", "SCHEDULED")]


@pytest.mark.parametrize(
    ("params", "status", "output"),
    [
        (
            {"expression": "(function(){ return $.a + 1; })()", "a": 1},
            TaskStatus.COMPLETED,
            {"result": 2},
        ),
        (
            {"evaluatorType": "graaljs", "expression": "$.a * 3", "a": 2},
            TaskStatus.COMPLETED,
            {"result": 6},
        ),
        (
            {"evaluatorType": "value-param", "expression": "a", "a": {"x": 1}},
            TaskStatus.COMPLETED,
            {"result": {"x": 1}},
        ),
    ],
)
def test_inline(
    decider: ModuleType, params: dict[str, Any], status: TaskStatus, output: dict[str, Any]
) -> None:
    d, wid = start(decider, [sys_task("i", "INLINE", inputParameters=params)])
    i = d.task(wid, "i")
    assert (i.status, i.output_data) == (status, output)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"expression": "syntax error here("}, "SyntaxError"),
        ({"evaluatorType": "python", "expression": "1"}, "Unknown evaluator type: python"),
        ({"expression": ""}, "Empty 'expression' in INLINE task's input parameters"),
    ],
)
def test_inline_errors_are_terminal(
    decider: ModuleType, params: dict[str, Any], reason: str
) -> None:
    d, wid = start(decider, [sys_task("i", "INLINE", inputParameters=params)])
    i = d.task(wid, "i")
    assert i.status is TaskStatus.FAILED_WITH_TERMINAL_ERROR
    assert isinstance(i.reason_for_incompletion, str)
    assert reason in i.reason_for_incompletion


def test_inline_timeout_is_retryable(decider: ModuleType) -> None:
    wf = workflow(wdef([sys_task("i", "INLINE", inputParameters={"expression": "1"})]))
    env = ev.DeciderEnv(task_defs={"i": tdef("i", retryCount=1, retryDelaySeconds=0)})
    [script] = decider.decide(wf, ev.StartWorkflow(), env, T0).actions
    decision = decider.decide(
        wf, ev.ScriptResult(task_id=script.task_id, error="timed out", timed_out=True), env, T0
    )
    assert wf.tasks[0].status is TaskStatus.FAILED
    assert [type(a) for a in decision.actions] == [
        ev.EvaluateScript
    ]  # the retry runs the script again
    assert wf.tasks[1].retry_count == 1


def test_lambda_and_jq(decider: ModuleType) -> None:
    tasks = [
        sys_task(
            "l", "LAMBDA", inputParameters={"v": 2, "scriptExpression": "return {d: $.v * 2};"}
        ),
        sys_task(
            "q",
            "JSON_JQ_TRANSFORM",
            inputParameters={"xs": [1, 2, 3], "queryExpression": ".xs[] | . * 10"},
        ),
    ]
    d, wid = start(decider, tasks)
    assert d.task(wid, "l").output_data == {"result": {"d": 4}}
    assert d.task(wid, "q").output_data == {"result": 10, "resultList": [10, 20, 30]}
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED


def test_jq_error_fails_task(decider: ModuleType) -> None:
    d, wid = start(
        decider,
        [
            sys_task(
                "q", "JSON_JQ_TRANSFORM", inputParameters={"queryExpression": '.a | error("x")'}
            )
        ],
    )
    q = d.task(wid, "q")
    assert q.status is TaskStatus.FAILED
    assert q.output_data["error"]


def test_http_runs_as_system_task_and_retries(decider: ModuleType) -> None:
    calls: list[dict[str, Any]] = []

    def http(task: Any, data: dict[str, Any]) -> tuple[TaskStatus, dict[str, Any]]:
        calls.append(data)
        return (
            (TaskStatus.FAILED, {})
            if len(calls) == 1
            else (TaskStatus.COMPLETED, {"response": {"statusCode": 200}})
        )

    tasks = [
        sys_task(
            "h",
            "HTTP",
            inputParameters={
                "http_request": {"uri": "http://x/${workflow.input.id}", "method": "GET"}
            },
        )
    ]
    d = Driver(
        decider,
        workflow_defs=[wdef(tasks, name="sys")],
        task_defs=[tdef("h", retryCount=1, retryDelaySeconds=5)],
        http=http,
        start_ms=T0,
    )
    wid = d.start("sys", {"id": 7})
    assert calls == [{"http_request": {"uri": "http://x/7", "method": "GET"}}]
    retry = d.task(wid, "h")
    assert (retry.status, retry.retry_count) == (TaskStatus.SCHEDULED, 1)
    assert d.wakes[wid] == T0 + 5_000  # the retry delay of a system task is a decider timer
    d.run()
    assert len(calls) == 2
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED


def test_event_task_sinks(decider: ModuleType) -> None:
    tasks = [
        sys_task("e1", "EVENT", sink="conductor", inputParameters={"a": 1}),
        sys_task("e2", "EVENT", sink="conductor:custom"),
        sys_task("e3", "EVENT", sink="sqs:my_queue"),
        sys_task("e4", "EVENT", sink="sqs:q", asyncComplete=True),
    ]
    d, wid = start(decider, tasks)
    assert [m.queue for m in d.published] == [
        "conductor:sys:e1",
        "conductor:sys:custom",
        "sqs:my_queue",
        "sqs:q",
    ]
    assert d.published[0].payload["a"] == 1
    assert d.published[0].payload["sink"] == "conductor"
    assert d.task(wid, "e4").status is TaskStatus.IN_PROGRESS  # asyncComplete waits for an update


def test_sub_workflow_terminated_with_parent(decider: ModuleType) -> None:
    child = wdef([simple("c")], name="child")
    tasks = [sys_task("s", "SUB_WORKFLOW", subWorkflowParam={"name": "child", "version": 1})]
    d, wid = start(decider, tasks, others=[child])
    s = d.task(wid, "s")
    assert isinstance(s.sub_workflow_id, str)
    child_wf = d.workflows[s.sub_workflow_id]
    assert child_wf.status is WorkflowStatus.RUNNING
    assert s.status is TaskStatus.IN_PROGRESS
    d.decide(wid, ev.Terminate(reason="stop"))
    assert status_of(child_wf) is WorkflowStatus.TERMINATED
    assert (
        child_wf.reason_for_incompletion
        == "Parent workflow has been terminated with status TERMINATED"
    )
    assert status_of(s) is TaskStatus.CANCELED


def test_sub_workflow_id_is_deterministic(decider: ModuleType) -> None:
    child = wdef([simple("c")], name="child")
    tasks = [sys_task("s", "SUB_WORKFLOW", subWorkflowParam={"name": "child"})]
    ids = set()
    for _ in range(2):
        d, wid = start(decider, tasks, others=[child])
        ids.add(d.task(wid, "s").sub_workflow_id)
    assert len(ids) == 1
