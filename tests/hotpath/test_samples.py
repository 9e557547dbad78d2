"""Conductor's own sample workflows (kitchensink and the test-harness set), driven to the
end by the in-memory driver on both decider twins: task order, statuses and outputs."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from core import decisions as ev
from core.enums import TaskResultStatus, TaskStatus, WorkflowStatus
from core.models import TaskDef, WorkflowDef
from tests.hotpath.defs import status_of, wdef
from tests.hotpath.driver import Driver


def load(shared: Path, rel: str) -> WorkflowDef:
    raw = json.loads((shared / "conductor-samples" / rel).read_text())
    return msgspec.convert(raw.get("workflowDef", raw), WorkflowDef)


def kitchen_task_defs(shared: Path) -> list[TaskDef]:
    raw = json.loads(
        (shared / "conductor-samples/kitchensink/kitchensink_taskdefs.json").read_text()
    )
    return msgspec.convert(raw, list[TaskDef])


ES_RESPONSE = {
    "response": {
        "statusCode": 200,
        "body": {
            "hits": {
                "hits": [
                    {"_source": {"workflowId": "w-1", "status": "COMPLETED"}},
                    {"_source": {"workflowId": "w-2", "status": "FAILED"}},
                ]
            }
        },
    }
}


def kitchen_driver(decider: ModuleType, shared: Path, odd_even: int) -> Driver:
    def task_1(task: Any) -> dict[str, Any]:
        return {"mod": 5, "oddEven": odd_even}

    def task_4(task: Any) -> dict[str, Any]:
        return {
            "dynamicTasks": [
                {"name": "task_7", "taskReferenceName": "dyn_a", "type": "SIMPLE"},
                {"name": "task_8", "taskReferenceName": "dyn_b"},
            ],
            "inputs": {"dyn_a": {"n": 1}, "dyn_b": {"n": 2}},
        }

    return Driver(
        decider,
        workflow_defs=[
            load(shared, "kitchensink/kitchensink.json"),
            load(shared, "kitchensink/sub_flow_1.json"),
        ],
        task_defs=kitchen_task_defs(shared),
        workers={
            "task_1": task_1,
            "task_5": lambda t: {
                "mod": t.input_data.get("mod"),
                "oddEven": odd_even,
                "ran": "task_5",
            },
            "task_4": task_4,
            "*": lambda t: {"echo": t.input_data, "ref": t.reference_task_name},
        },
        http=lambda task, data: (TaskStatus.COMPLETED, ES_RESPONSE),
    )


def test_kitchensink_even_path_dynamic_fanout(decider: ModuleType, shared_dir: Path) -> None:
    d = kitchen_driver(decider, shared_dir, odd_even=0)
    wid = d.start("kitchensink", {"task2Name": "task_5", "mod": 5, "oddEven": 0})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == [
        "task_1",
        "event_0",
        "task_2",
        "oddEvenDecision",
        "task_4",
        "fanout1",
        "dyn_a",
        "dyn_b",
        "join1",
        "get_es_1",
        "task_30",
    ]
    assert d.task(wid, "task_2").task_type == "task_5"  # DYNAMIC resolved from the input
    assert d.task(wid, "oddEvenDecision").output_data == {"caseOutput": ["0"]}
    assert d.task(wid, "dyn_a").input_data == {"n": 1}
    assert d.task(wid, "fanout1").task_type == "FORK"
    assert d.task(wid, "join1").output_data == {
        "dyn_a": {"echo": {"n": 1}, "ref": "dyn_a"},
        "dyn_b": {"echo": {"n": 2}, "ref": "dyn_b"},
    }
    assert d.task(wid, "task_30").input_data == {
        "statuses": ["COMPLETED", "FAILED"],
        "workflowIds": ["w-1", "w-2"],
    }
    assert wf.output == {"statues": ["COMPLETED", "FAILED"], "workflowIds": ["w-1", "w-2"]}
    [published] = d.published
    assert published.queue == "conductor:kitchensink:event_0"
    assert published.payload["mod"] == 5


def test_kitchensink_odd_path_runs_two_sub_workflows(decider: ModuleType, shared_dir: Path) -> None:
    d = kitchen_driver(decider, shared_dir, odd_even=1)
    wid = d.start("kitchensink", {"task2Name": "task_5", "mod": 5, "oddEven": 1})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED, wf.reason_for_incompletion
    assert d.refs(wid) == [
        "task_1",
        "event_0",
        "task_2",
        "oddEvenDecision",
        "forkx",
        "task_10",
        "task_11",
        "join2",
        "wf3",
        "wf4",
        "get_es_1",
        "task_30",
    ]
    children = [w for w in d.workflows.values() if w.parent_workflow_id == wid]
    assert len(children) == 2
    for child in children:
        assert child.status is WorkflowStatus.COMPLETED
        assert [t.reference_task_name for t in child.tasks] == ["task_5", "task_6"]
        assert child.input == {"mod": 5, "oddEven": 1}
    join = d.task(wid, "join2")
    assert join.status is TaskStatus.COMPLETED
    assert set(join.output_data) == {"wf3", "wf4"}
    assert join.output_data["wf3"]["subWorkflowId"] == d.task(wid, "wf3").sub_workflow_id


@pytest.mark.parametrize(
    "rel",
    [
        "kitchensink/kitchenSink-ephemeralWorkflowWithStoredTasks.json",
        "kitchensink/kitchenSink-ephemeralWorkflowWithEphemeralTasks.json",
    ],
)
def test_kitchensink_ephemeral_definitions(decider: ModuleType, shared_dir: Path, rel: str) -> None:
    request = json.loads((shared_dir / "conductor-samples" / rel).read_text())
    defn = load(shared_dir, rel)
    d = kitchen_driver(decider, shared_dir, odd_even=0)
    d.workers["task_10001"] = lambda t: {"mod": 5, "oddEven": 0}
    d.workers["task_10005"] = lambda t: {"oddEven": 0}
    wid = d.start(defn.name, request["input"], definition=defn)
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED, wf.reason_for_incompletion
    assert d.refs(wid)[:4] == [
        defn.tasks[0].task_reference_name,
        "event_0",
        "task_2",
        "oddEvenDecision",
    ]
    assert d.task(wid, "task_2").task_type == request["input"]["task2Name"]
    assert wf.output["statues"] == ["COMPLETED", "FAILED"]


def test_fork_join(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider,
        workflow_defs=[load(shared_dir, "workflows/fork_join_integration_test.json")],
        workers={"*": lambda t: {"done": t.reference_task_name}},
    )
    wid = d.start("FanInOutTest", {"param1": "p1"})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == ["fanouttask", "t1", "t2", "fanouttask_join", "t3", "t4"]
    assert d.task(wid, "fanouttask_join").output_data == {
        "t3": {"done": "t3"},
        "t2": {"done": "t2"},
    }
    assert d.task(wid, "t1").input_data == {
        "p1": "workflow.input.param1",
        "p2": "workflow.input.param2",
    }
    assert wf.output == {"done": "t4"}  # no outputParameters: the last task's output


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        (
            {"param1": "nested", "param2": "one", "finalCase": "notify"},
            ["conditional", "nestedCondition", "t1", "finalCase", "integration_task_4"],
        ),
        (
            {"param1": "nested", "param2": "two"},
            ["conditional", "nestedCondition", "t2", "finalCase"],
        ),
        ({"param1": "three"}, ["conditional", "t3", "finalCase"]),
        (
            {"param1": "xyz", "finalCase": "notify"},
            ["conditional", "t10", "finalCase", "integration_task_4"],
        ),
    ],
)
def test_conditional_switch(
    decider: ModuleType, shared_dir: Path, inputs: dict[str, Any], expected: list[str]
) -> None:
    d = Driver(
        decider,
        workflow_defs=[
            load(shared_dir, "workflows/conditional_switch_task_workflow_integration_test.json")
        ],
    )
    wid = d.start("ConditionalTaskWF", inputs)
    d.run()
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == expected
    assert d.task(wid, "conditional").output_data["selectedCase"] == inputs["param1"]


def test_do_while_with_fork(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider,
        workflow_defs=[load(shared_dir, "workflows/do_while_integration_test.json")],
        workers={"*": lambda t: {"ref": t.reference_task_name}},
    )
    wid = d.start("Do_While_Workflow", {"loop": 2})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED, wf.reason_for_incompletion
    one = [
        "integration_task_0__1",
        "fork__1",
        "integration_task_1__1",
        "integration_task_2__1",
        "join__1",
    ]
    two = [r.replace("__1", "__2") for r in one]
    assert d.refs(wid) == ["loopTask", *one, *two]
    loop = d.task(wid, "loopTask")
    assert loop.output_data["iteration"] == 2
    assert loop.output_data["1"]["integration_task_0"] == {"ref": "integration_task_0__1"}
    assert loop.output_data["2"]["join"] == {
        "integration_task_1__2": {"ref": "integration_task_1__2"},
        "integration_task_2__2": {"ref": "integration_task_2__2"},
    }
    assert d.task(wid, "integration_task_1__2").iteration == 2


def test_do_while_with_inline_switch_and_wait(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider, workflow_defs=[load(shared_dir, "workflows/do_while_with_decision_task.json")]
    )
    wid = d.start("DO_While_with_Decision_task", {"list": [3, -1]})
    d.run()
    # Iteration 1: the number 3 is positive, so the WAIT inside the SWITCH holds the loop.
    wait = d.task(wid, "WaitTask__1")
    assert wait.status is TaskStatus.IN_PROGRESS
    assert d.task(wid, "GetNumberAtIndex__1").output_data == {"result": 3}
    d.complete(wait, {"ok": True})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED, wf.reason_for_incompletion
    assert d.refs(wid) == [
        "LoopTask",
        "GetNumberAtIndex__1",
        "SwitchTask__1",
        "WaitTask__1",
        "ComputeNumber__1",
        "GetNumberAtIndex__2",
        "SwitchTask__2",
    ]
    assert d.task(wid, "SwitchTask__2").output_data["selectedCase"] == "false"
    assert d.task(wid, "LoopTask").output_data["iteration"] == 2


def test_dynamic_fork_join(decider: ModuleType, shared_dir: Path) -> None:
    dynamic = {
        "dynamicTasks": [
            {"name": "integration_task_2", "taskReferenceName": "xdt1", "type": "SIMPLE"},
            {"name": "integration_task_3", "taskReferenceName": "xdt2"},
        ],
        "dynamicTasksInput": {"xdt1": {"k1": "v1"}, "xdt2": {"k2": "v2"}},
    }
    d = Driver(
        decider,
        workflow_defs=[load(shared_dir, "workflows/dynamic_fork_join_integration_test.json")],
        workers={"integration_task_1": lambda t: dynamic, "*": lambda t: {"got": t.input_data}},
    )
    wid = d.start("DynamicFanInOutTest", {"param1": "a"})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == [
        "dt1",
        "dynamicfanouttask",
        "xdt1",
        "xdt2",
        "dynamicfanouttask_join",
        "task4",
    ]
    assert d.task(wid, "dynamicfanouttask").input_data["forkedTasks"] == ["xdt1", "xdt2"]
    assert d.task(wid, "dynamicfanouttask_join").output_data == {
        "xdt1": {"got": {"k1": "v1"}},
        "xdt2": {"got": {"k2": "v2"}},
    }
    assert d.task(wid, "xdt1").task_type == "integration_task_2"


def test_event_task(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider, workflow_defs=[load(shared_dir, "workflows/event_workflow_integration_test.json")]
    )
    wid = d.start("test_event_workflow", {}, correlation_id="c-1")
    d.run()
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == ["wait0", "t1"]
    [msg] = d.published
    assert msg.queue == "conductor:test_event_workflow:wait0"
    assert msg.message_id == d.task(wid, "wait0").task_id
    assert msg.payload["workflowInstanceId"] == wid
    assert msg.payload["correlationId"] == "c-1"
    assert msg.payload["event_produced"] == msg.queue


@pytest.mark.parametrize(
    ("inputs", "expected", "joined"),
    [
        (
            {"decision_1": "true", "decision_2": "true"},
            ["task1", "decision1", "task2", "decision2", "task3", "exclusiveJoin"],
            "task3",
        ),
        (
            {"decision_1": "false", "decision_3": "true"},
            ["task1", "decision1", "task4", "decision3", "task5", "exclusiveJoin"],
            "task5",
        ),
        (
            {"decision_1": "false", "decision_3": "false"},
            ["task1", "decision1", "task4", "decision3", "exclusiveJoin"],
            "task4",
        ),
        ({"decision_1": "neither"}, ["task1", "decision1", "exclusiveJoin"], "task1"),
    ],
)
def test_exclusive_join(
    decider: ModuleType, shared_dir: Path, inputs: dict[str, Any], expected: list[str], joined: str
) -> None:
    d = Driver(
        decider,
        workflow_defs=[load(shared_dir, "workflows/exclusive_join_integration_test.json")],
        workers={"*": lambda t: {"from": t.reference_task_name}},
    )
    wid = d.start("ExclusiveJoinTestWorkflow", {"payload": 1, **inputs})
    d.run()
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == expected
    assert d.task(wid, "exclusiveJoin").output_data == {"from": joined}


@pytest.mark.parametrize(
    ("action", "expected_last"), [("redeliver", "decide_2"), ("cancel", "get_population_data")]
)
def test_json_jq_transform_feeds_decisions(
    decider: ModuleType, shared_dir: Path, action: str, expected_last: str
) -> None:
    d = Driver(
        decider,
        workflow_defs=[
            load(shared_dir, "workflows/json_jq_transform_result_integration_test.json")
        ],
    )
    wid = d.start("json_jq_transform_result_wf", {"requestedAction": action})
    d.run()
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    assert d.refs(wid)[-1] == expected_last
    assert d.task(wid, "json_jq_1").output_data == {"result": "CREATE", "resultList": ["CREATE"]}
    assert d.task(wid, "json_jq_2").output_data["result"] == [
        "redeliver",
        "redeliver_from_validation_error",
        "redelivery",
    ]


def test_set_variable_then_wait(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider,
        workflow_defs=[load(shared_dir, "workflows/set_variable_workflow_integration_test.json")],
    )
    wid = d.start("set_variable_workflow_integration_test", {"var": "v1"})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.RUNNING  # the WAIT has neither duration nor until
    assert wf.variables == {"var": "v1"}
    d.complete(d.task(wid, "wait0"))
    assert status_of(wf) is WorkflowStatus.COMPLETED
    assert wf.output == {"variables": {"var": "v1"}}


@pytest.mark.parametrize(
    ("case", "expected"),
    [("c", ["decisionTask", "t1", "t2", "t20"]), ("x", ["decisionTask", "t5", "t20"])],
)
def test_simple_decision(
    decider: ModuleType, shared_dir: Path, case: str, expected: list[str]
) -> None:
    d = Driver(
        decider,
        workflow_defs=[load(shared_dir, "workflows/simple_decision_task_integration_test.json")],
    )
    wid = d.start("DecisionWorkflow", {"case": case, "param1": "p"})
    d.run()
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == expected
    assert d.task(wid, expected[1]).input_data == {"p1": "p", "p2": None}


def test_input_template_and_task_id(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider,
        workflow_defs=[
            load(shared_dir, "workflows/simple_workflow_1_input_template_integration_test.json")
        ],
        workers={"integration_task_1": lambda t: {"op": "done"}},
    )
    wid = d.start("integration_test_template_wf", {"param3": "given"})
    t1 = d.task(wid, "t1")
    assert t1.input_data == {
        "p1": {"nested_object": {"nested_key": "nested_value"}},
        "p2": ["list", "of", "strings"],
        "p3": t1.task_id,
        "someNullKey": None,
    }
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.output == {
        "output": "done",
        "param1": {"nested_object": {"nested_key": "nested_value"}},
        "param2": ["list", "of", "strings"],
        "param3": "given",
    }


def test_failure_workflow_from_input_key(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider,
        workflow_defs=[
            load(shared_dir, "workflows/simple_workflow_1_input_template_integration_test.json"),
            wdef([{"name": "cleanup", "taskReferenceName": "cleanup"}], name="on_failure"),
        ],
        workers={
            "integration_task_1": lambda t: (
                TaskResultStatus.FAILED_WITH_TERMINAL_ERROR,
                {},
                "broken",
            )
        },
    )
    wid = d.start("integration_test_template_wf", {"failureWfName": "on_failure"})
    d.run(max_steps=50)
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.FAILED
    t1 = d.task(wid, "t1")
    assert (
        wf.reason_for_incompletion
        == f"Task {t1.task_id} failed with status: FAILED and reason: 'broken'"
    )
    assert wf.failed_reference_task_names == ["t1"]
    [action] = d.failure_workflows
    assert action.name == "on_failure"
    assert wf.output["conductor.failure_workflow"] == action.workflow_id
    assert action.input["failureStatus"] == "FAILED"
    assert action.input["failureTaskId"] == t1.task_id
    assert action.input["failedWorkflow"]["workflowId"] == wid
    assert d.workflows[action.workflow_id].tasks[0].reference_task_name == "cleanup"


def test_sub_workflow_inline_definition(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider,
        workflow_defs=[
            load(
                shared_dir,
                "workflows/simple_workflow_with_sub_workflow_inline_def_integration_test.json",
            )
        ],
        workers={
            "integration_task_1": lambda t: {"op": "o1", "imageType": "png"},
            "*": lambda t: {"seen": t.input_data},
        },
    )
    wid = d.start("WorkflowWithInlineSubWorkflow", {"param1": "a"}, correlation_id="corr")
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == ["t1", "swt", "t2"]
    swt = d.task(wid, "swt")
    assert isinstance(swt.sub_workflow_id, str)
    child = d.workflows[swt.sub_workflow_id]
    assert child.parent_workflow_id == wid
    assert child.correlation_id == "corr"
    assert child.tasks[0].input_data == {"p1": "png"}
    assert swt.output_data["subWorkflowId"] == child.workflow_id
    assert wf.output == {"o3": "o1"}


def test_sub_workflow_by_name_expression(decider: ModuleType, shared_dir: Path) -> None:
    child_def = wdef(
        [{"name": "child_task", "taskReferenceName": "c1"}],
        name="child_wf",
        outputParameters={"got": "${workflow.input.param1}"},
    )
    d = Driver(
        decider,
        workflow_defs=[
            load(shared_dir, "workflows/workflow_with_sub_workflow_1_integration_test.json"),
            child_def,
        ],
    )
    wid = d.start("integration_test_wf_with_sub_wf", {"param1": "x", "subwf": "child_wf"})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED
    t2 = d.task(wid, "t2")
    assert t2.output_data == {"subWorkflowId": t2.sub_workflow_id, "got": "x"}
    assert t2.input_data["subWorkflowName"] == "child_wf"


def test_sub_workflow_failure_fails_parent(decider: ModuleType, shared_dir: Path) -> None:
    child_def = wdef([{"name": "child_task", "taskReferenceName": "c1"}], name="child_wf")
    d = Driver(
        decider,
        workflow_defs=[
            load(shared_dir, "workflows/workflow_with_sub_workflow_1_integration_test.json"),
            child_def,
        ],
        workers={"child_task": lambda t: (TaskResultStatus.FAILED_WITH_TERMINAL_ERROR, {}, "nope")},
    )
    wid = d.start("integration_test_wf_with_sub_wf", {"subwf": "child_wf"})
    d.run()
    wf = d.workflows[wid]
    t2 = d.task(wid, "t2")
    assert isinstance(t2.sub_workflow_id, str)
    child = d.workflows[t2.sub_workflow_id]
    assert child.status is WorkflowStatus.FAILED
    assert t2.status is TaskStatus.FAILED
    assert isinstance(t2.reason_for_incompletion, str)
    assert t2.reason_for_incompletion.startswith(
        f"Sub workflow {child.workflow_id} failure reason: Task "
    )
    assert wf.status is WorkflowStatus.FAILED


def test_start_workflow_task(decider: ModuleType, shared_dir: Path) -> None:
    other = wdef([{"name": "other_task", "taskReferenceName": "o1"}], name="other")
    d = Driver(
        decider,
        workflow_defs=[
            load(shared_dir, "workflows/workflow_that_starts_another_workflow.json"),
            other,
        ],
    )
    wid = d.start(
        "workflow_that_starts_another_workflow",
        {"startWorkflow": {"name": "other", "input": {"a": 1}}},
        correlation_id="c9",
    )
    d.run()
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    started = d.task(wid, "st").output_data["workflowId"]
    assert d.workflows[started].input == {"a": 1}
    assert d.workflows[started].correlation_id == "c9"  # inherited from the starter
    assert d.workflows[started].status is WorkflowStatus.COMPLETED


def test_terminate_task_fails_workflow(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider,
        workflow_defs=[
            load(shared_dir, "workflows/terminate_task_failed_workflow_integration.json")
        ],
    )
    wid = d.start("test_terminate_task_failed_wf", {"a": 1})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.FAILED
    assert d.refs(wid) == ["lambda0", "terminate0"]  # t2 is never reached
    assert wf.reason_for_incompletion == "Early exit in terminate"
    assert d.task(wid, "terminate0").status is TaskStatus.COMPLETED
    [failure] = d.failure_workflows
    assert failure.name == "failure_workflow"
    # The TERMINATE task's output becomes the workflow's, plus the failure workflow's id.
    assert wf.output == {
        "result": {"testvalue": True},
        "conductor.failure_workflow": failure.workflow_id,
    }
    assert failure.input["failureTaskId"] == d.task(wid, "terminate0").task_id


def test_every_sample_workflow_is_covered(shared_dir: Path) -> None:
    """A new sample file must get a test here (the event handler is not a workflow)."""
    files = sorted(p.name for p in (shared_dir / "conductor-samples/workflows").glob("*.json"))
    covered = {
        "conditional_switch_task_workflow_integration_test.json",
        "do_while_integration_test.json",
        "do_while_with_decision_task.json",
        "dynamic_fork_join_integration_test.json",
        "event_workflow_integration_test.json",
        "exclusive_join_integration_test.json",
        "fork_join_integration_test.json",
        "json_jq_transform_result_integration_test.json",
        "set_variable_workflow_integration_test.json",
        "simple_decision_task_integration_test.json",
        "simple_workflow_1_input_template_integration_test.json",
        "simple_workflow_with_sub_workflow_inline_def_integration_test.json",
        "sqs-complete-wait-event-handler.json",
        "terminate_task_failed_workflow_integration.json",
        "workflow_that_starts_another_workflow.json",
        "workflow_with_sub_workflow_1_integration_test.json",
    }
    assert set(files) <= covered


def test_sweep_is_harmless_when_nothing_is_due(decider: ModuleType, shared_dir: Path) -> None:
    d = Driver(
        decider, workflow_defs=[load(shared_dir, "workflows/fork_join_integration_test.json")]
    )
    wid = d.start("FanInOutTest", {})
    before = d.encoded(wid)
    decision = d.decide(wid, ev.Sweep())
    assert decision.actions == []
    assert msgspec.json.decode(d.encoded(wid))["tasks"] == msgspec.json.decode(before)["tasks"]


@pytest.mark.parametrize("odd_even", [0, 1])
def test_kitchensink_survives_a_store_round_trip_at_every_step(
    decider: ModuleType, shared_dir: Path, odd_even: int
) -> None:
    """Each decision sees a workflow decoded from JSON (new objects), as after a reload."""
    d = kitchen_driver(decider, shared_dir, odd_even=odd_even)
    d.reload = True
    wid = d.start("kitchensink", {"task2Name": "task_5", "mod": 5, "oddEven": odd_even})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED, wf.reason_for_incompletion
    assert d.refs(wid)[-2:] == ["get_es_1", "task_30"]
    assert wf.output == {"statues": ["COMPLETED", "FAILED"], "workflowIds": ["w-1", "w-2"]}


def test_loops_survive_a_store_round_trip_at_every_step(
    decider: ModuleType, shared_dir: Path
) -> None:
    d = Driver(
        decider,
        workflow_defs=[load(shared_dir, "workflows/do_while_integration_test.json")],
        workers={"*": lambda t: {"ref": t.reference_task_name}},
        reload=True,
    )
    wid = d.start("Do_While_Workflow", {"loop": 3})
    d.run()
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.COMPLETED, wf.reason_for_incompletion
    assert d.task(wid, "loopTask").output_data["iteration"] == 3
    assert len(wf.tasks) == 1 + 3 * 5
