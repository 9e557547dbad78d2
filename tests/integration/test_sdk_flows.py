"""The official SDK against `podium server`: DSL workflows of every flow-control and
system task type, worker tasks run by the SDK's TaskHandler (spawned processes), and the
final status and outputs of each run."""

from __future__ import annotations

from typing import Any

import pytest
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.workflow.conductor_workflow import ConductorWorkflow
from conductor.client.workflow.task.do_while_task import LoopTask
from conductor.client.workflow.task.dynamic_fork_task import DynamicForkTask
from conductor.client.workflow.task.dynamic_task import DynamicTask
from conductor.client.workflow.task.fork_task import ForkTask
from conductor.client.workflow.task.http_task import HttpTask
from conductor.client.workflow.task.inline import InlineTask
from conductor.client.workflow.task.join_task import JoinTask
from conductor.client.workflow.task.json_jq_task import JsonJQTask
from conductor.client.workflow.task.set_variable_task import SetVariableTask
from conductor.client.workflow.task.simple_task import SimpleTask
from conductor.client.workflow.task.start_workflow_task import StartWorkflowTask
from conductor.client.workflow.task.sub_workflow_task import SubWorkflowTask
from conductor.client.workflow.task.switch_task import SwitchTask
from conductor.client.workflow.task.terminate_task import TerminateTask, WorkflowStatus

from tests.integration.conftest import Sdk
from tests.integration.sdk_support import task_by_ref, wait_for

pytestmark = pytest.mark.usefixtures("sdk_workers")


def _add(ref: str, a: Any, b: Any) -> SimpleTask:
    task = SimpleTask("it_add", ref)
    task.input_parameters.update({"a": a, "b": b})
    return task


def _workflow(sdk: Sdk, name: str) -> ConductorWorkflow:
    return ConductorWorkflow(executor=sdk.executor, name=name, version=1).owner_email(
        "it@example.com"
    )


def _start(sdk: Sdk, name: str, wf_input: dict[str, Any], **kw: Any) -> str:
    request = StartWorkflowRequest(name=name, version=1, input=wf_input, **kw)
    workflow_id: str = sdk.workflows.start_workflow(request)
    return workflow_id


def test_simple_workers_chain_and_output_parameters(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_simple_chain")
    first = _add("first", "${workflow.input.a}", "${workflow.input.b}")
    second = _add("second", "${first.output.sum}", 100)
    wf.add(first).add(second)
    wf.output_parameters({"total": "${second.output.sum}"})
    wf.register(overwrite=True)

    workflow_id = _start(sdk, "it_simple_chain", {"a": 2, "b": 3}, correlation_id="it-c1")
    done = wait_for(sdk, workflow_id)
    assert done.status == "COMPLETED"
    assert done.output == {"total": 105}
    assert task_by_ref(done, "first").output_data == {"sum": 5}
    assert done.correlation_id == "it-c1"
    # SDK helpers read tasks[].workflowTask.taskReferenceName.
    assert done.get_task(task_reference_name="second").worker_id == "it-it_add"


def test_switch_value_param_and_javascript(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_switch")
    by_value = SwitchTask("kind_switch", "${workflow.input.kind}")
    by_value.switch_case("small", [_add("small_add", 1, 1)])
    by_value.switch_case("big", [_add("big_add", 1000, 1000)])
    by_value.default_case([_add("default_add", 0, 0)])
    by_js = SwitchTask("js_switch", "$.n > 10 ? 'high' : 'low'", use_javascript=True)
    by_js.input_parameter("n", "${workflow.input.n}")
    by_js.switch_case("high", [_add("high_add", 5, 5)])
    by_js.switch_case("low", [_add("low_add", 1, 2)])
    wf.add(by_value).add(by_js)
    wf.register(overwrite=True)

    big = wait_for(sdk, _start(sdk, "it_switch", {"kind": "big", "n": 50}))
    assert big.status == "COMPLETED"
    refs = [t.reference_task_name for t in big.tasks]
    assert {"big_add", "high_add"} <= set(refs)
    assert not {"small_add", "low_add"} & set(refs)
    assert task_by_ref(big, "big_add").output_data == {"sum": 2000}

    other = wait_for(sdk, _start(sdk, "it_switch", {"kind": "unknown", "n": 3}))
    refs = [t.reference_task_name for t in other.tasks]
    assert {"default_add", "low_add"} <= set(refs)


def test_legacy_decision(sdk: Sdk) -> None:
    # DECISION is not in the DSL: register the raw definition through MetadataClient.
    from conductor.client.http.models.workflow_def import WorkflowDef
    from conductor.client.http.models.workflow_task import WorkflowTask

    decision = WorkflowTask(
        name="decide",
        task_reference_name="decide",
        type="DECISION",
        case_value_param="which",
        input_parameters={"which": "${workflow.input.which}"},
        decision_cases={
            "left": [
                WorkflowTask(
                    name="it_add",
                    task_reference_name="left_add",
                    type="SIMPLE",
                    input_parameters={"a": 1, "b": 1},
                )
            ]
        },
        default_case=[
            WorkflowTask(
                name="it_add",
                task_reference_name="right_add",
                type="SIMPLE",
                input_parameters={"a": 2, "b": 2},
            )
        ],
    )
    definition = WorkflowDef(
        name="it_decision",
        version=1,
        tasks=[decision],
        schema_version=2,
        owner_email="it@example.com",
    )
    sdk.metadata.register_workflow_def(definition, overwrite=True)
    fetched = sdk.metadata.get_workflow_def("it_decision", version=1)
    assert fetched.tasks[0].case_value_param == "which"

    done = wait_for(sdk, _start(sdk, "it_decision", {"which": "left"}))
    assert done.status == "COMPLETED"
    assert task_by_ref(done, "left_add").output_data == {"sum": 2}
    assert task_by_ref(done, "decide").output_data == {"caseOutput": ["left"]}


def test_fork_join_and_dynamic_fork(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_forks")
    fork = ForkTask(
        "fork",
        [[_add("left", 1, 2)], [_add("right", 10, 20)]],
        join_on=["left", "right"],
    )
    fanout = SimpleTask("it_fanout", "fanout").input_parameter("pairs", "${workflow.input.pairs}")
    dynamic = DynamicForkTask(
        "dyn_fork",
        tasks_param="dynamicTasks",
        tasks_input_param_name="dynamicTasksInput",
        join_task=JoinTask("dyn_join"),
    )
    dynamic.input_parameters.update(
        {
            "dynamicTasks": "${fanout.output.dynamicTasks}",
            "dynamicTasksInput": "${fanout.output.dynamicTasksInput}",
        }
    )
    wf.add(fork).add(fanout).add(dynamic)
    wf.output_parameters({"join": "${fork_join.output}", "dyn": "${dyn_join.output}"})
    wf.register(overwrite=True)

    done = wait_for(sdk, _start(sdk, "it_forks", {"pairs": [[1, 1], [2, 3], [4, 5]]}))
    assert done.status == "COMPLETED", done.reason_for_incompletion
    assert done.output["join"] == {"left": {"sum": 3}, "right": {"sum": 30}}
    assert done.output["dyn"] == {"add_0": {"sum": 2}, "add_1": {"sum": 5}, "add_2": {"sum": 9}}
    assert task_by_ref(done, "fork").task_type == "FORK"


def test_do_while_loop(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_loop")
    step = SimpleTask("it_square", "sq").input_parameter("i", "${loop.output.iteration}")
    wf.add(LoopTask("loop", 3, [step]))
    wf.output_parameters({"last": "${sq.output.sq}", "loop": "${loop.output}"})
    wf.register(overwrite=True)

    done = wait_for(sdk, _start(sdk, "it_loop", {}))
    assert done.status == "COMPLETED", done.reason_for_incompletion
    refs = [t.reference_task_name for t in done.tasks if t.task_type == "it_square"]
    assert refs == ["sq__1", "sq__2", "sq__3"]
    assert done.output["last"] == 9
    assert done.output["loop"]["iteration"] == 3
    assert done.output["loop"]["2"] == {"sq": {"sq": 4, "iteration": 2}}


def test_sub_workflow_and_start_workflow(sdk: Sdk) -> None:
    child = _workflow(sdk, "it_child")
    child.add(_add("child_add", "${workflow.input.a}", 1))
    child.output_parameters({"out": "${child_add.output.sum}"})
    child.register(overwrite=True)

    parent = _workflow(sdk, "it_parent")
    sub = SubWorkflowTask("sub", "it_child", 1)
    sub.input_parameter("a", "${workflow.input.a}")
    starter = StartWorkflowTask(
        "starter", "it_child", StartWorkflowRequest(name="it_child", input={"a": 41}), version=1
    )
    parent.add(sub).add(starter)
    parent.output_parameters({"child": "${sub.output.out}", "started": "${starter.output}"})
    parent.register(overwrite=True)

    done = wait_for(sdk, _start(sdk, "it_parent", {"a": 9}))
    assert done.status == "COMPLETED", done.reason_for_incompletion
    assert done.output["child"] == 10
    sub_task = task_by_ref(done, "sub")
    child_run = wait_for(sdk, sub_task.sub_workflow_id)
    assert child_run.parent_workflow_id == done.workflow_id
    assert child_run.output == {"out": 10}
    started_id = done.output["started"]["workflowId"]
    started = wait_for(sdk, started_id)
    assert started.status == "COMPLETED"
    assert started.output == {"out": 42}


def test_dynamic_inline_jq_set_variable_and_terminate(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_system")
    dynamic = DynamicTask("${workflow.input.worker}", "dyn")
    dynamic.input_parameters.update({"a": 20, "b": 22})
    inline = InlineTask(
        "inl",
        "(function () { return {sum: $.a + $.b, msg: 'hi ' + $.name}; })();",
        bindings={
            "a": "${workflow.input.a}",
            "b": "${dyn.output.sum}",
            "name": "${workflow.input.name}",
        },
    )
    jq = JsonJQTask("jq", "{ total: ([.items[].price] | add), names: [.items[].name] }")
    jq.input_parameter("items", "${workflow.input.items}")
    setv = SetVariableTask("setv")
    setv.input_parameters.update({"counter": "${inl.output.result.sum}", "label": "it"})
    term = TerminateTask("term", WorkflowStatus.COMPLETED, "done early")
    term.input_parameter(
        "workflowOutput", {"vars": "${workflow.variables}", "jq": "${jq.output.result}"}
    )
    never = _add("never", 0, 0)
    wf.add(dynamic).add(inline).add(jq).add(setv).add(term).add(never)
    wf.register(overwrite=True)

    done = wait_for(
        sdk,
        _start(
            sdk,
            "it_system",
            {
                "worker": "it_add",
                "a": 1,
                "name": "podium",
                "items": [{"name": "x", "price": 2}, {"name": "y", "price": 3}],
            },
        ),
    )
    assert done.status == "COMPLETED", done.reason_for_incompletion
    assert task_by_ref(done, "dyn").task_type == "it_add"
    assert task_by_ref(done, "inl").output_data == {"result": {"sum": 43, "msg": "hi podium"}}
    assert done.output["jq"] == {"total": 5, "names": ["x", "y"]}
    assert done.output["vars"] == {"counter": 43, "label": "it"}
    assert done.variables == {"counter": 43, "label": "it"}
    assert "never" not in [t.reference_task_name for t in done.tasks]


def test_terminate_failed_status(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_terminate_failed")
    wf.add(TerminateTask("stop", WorkflowStatus.FAILED, "deliberate stop"))
    wf.register(overwrite=True)
    done = wait_for(sdk, _start(sdk, "it_terminate_failed", {}))
    assert done.status == "FAILED"
    assert done.reason_for_incompletion == "deliberate stop"


def test_http_task_against_loopback(sdk: Sdk, echo_url: str) -> None:
    wf = _workflow(sdk, "it_http")
    http = HttpTask(
        "call",
        {
            "method": "POST",
            "uri": f"{echo_url}/echo",
            "body": {"x": "${workflow.input.x}"},
            "headers": {"x-podium-test": ["yes"]},  # HttpInput's list form
        },
    )
    wf.add(http)
    wf.output_parameters(
        {"status": "${call.output.response.statusCode}", "body": "${call.output.response.body}"}
    )
    wf.register(overwrite=True)
    done = wait_for(sdk, _start(sdk, "it_http", {"x": 7}))
    assert done.status == "COMPLETED", done.reason_for_incompletion
    assert done.output["status"] == 200
    assert done.output["body"] == {
        "method": "POST",
        "path": "/echo",
        "body": {"x": 7},
        "header": "yes",
    }


def test_inline_definition_start(sdk: Sdk) -> None:
    # ConductorWorkflow.start_workflow_with_input embeds the definition (never registered).
    wf = _workflow(sdk, "it_ephemeral_never_registered")
    wf.add(_add("only", "${workflow.input.a}", 5))
    wf.output_parameters({"v": "${only.output.sum}"})
    workflow_id = wf.start_workflow_with_input({"a": 5})
    done = wait_for(sdk, workflow_id)
    assert done.status == "COMPLETED"
    assert done.output == {"v": 10}
    assert done.workflow_definition.name == "it_ephemeral_never_registered"


def test_noop_passes_through(sdk: Sdk) -> None:
    from conductor.client.http.models.workflow_def import WorkflowDef
    from conductor.client.http.models.workflow_task import WorkflowTask

    definition = WorkflowDef(
        name="it_noop",
        version=1,
        schema_version=2,
        owner_email="it@example.com",
        tasks=[
            WorkflowTask(name="nothing", task_reference_name="nothing", type="NOOP"),
            WorkflowTask(
                name="it_add",
                task_reference_name="after",
                type="SIMPLE",
                input_parameters={"a": "${workflow.input.a}", "b": 1},
            ),
        ],
        output_parameters={"sum": "${after.output.sum}"},
    )
    sdk.metadata.register_workflow_def(definition, overwrite=True)
    done = wait_for(sdk, _start(sdk, "it_noop", {"a": 1}))
    assert done.status == "COMPLETED"
    assert task_by_ref(done, "nothing").status == "COMPLETED"
    assert done.output == {"sum": 2}


def test_execute_synchronously(sdk: Sdk) -> None:
    # ConductorWorkflow.execute: POST /api/workflow/execute/{name}/{version}, inline def.
    wf = _workflow(sdk, "it_execute")
    wf.add(_add("only", "${workflow.input.a}", "${workflow.input.b}"))
    wf.output_parameters({"sum": "${only.output.sum}"})
    run = wf.execute(workflow_input={"a": 20, "b": 22}, wait_for_seconds=15, request_id="r-9")
    assert run.status == "COMPLETED"
    assert run.output == {"sum": 42}
    assert run.request_id == "r-9"
    assert [t.reference_task_name for t in run.tasks] == ["only"]
