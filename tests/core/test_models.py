"""Wire models against Conductor's JSON: every sample decodes into the right model,
validates, and survives decode -> encode -> decode with no field lost; plus the wire
details clients rely on (camelCase, defaults, null vs omitted, extras, enum strings) and
a hypothesis round trip over generated definitions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings

from core import codec
from core.enums import RetryLogic, TimeoutPolicy, WorkflowTimeoutPolicy
from core.errors import DefinitionError
from core.models import (
    UNSET,
    EventHandler,
    StartWorkflowRequest,
    TaskDef,
    WorkflowDef,
    WorkflowTask,
)
from core.validation import validate_task_def, validate_workflow_def
from tests.core.strategies import task_defs, workflow_defs
from tests.core.wire_compare import wire_differences

# Every sample file and the model it must decode into.
SAMPLE_MODELS: dict[str, Any] = {
    "kitchensink/kitchensink.json": WorkflowDef,
    "kitchensink/sub_flow_1.json": WorkflowDef,
    "kitchensink/kitchensink_taskdefs.json": list[TaskDef],
    "kitchensink/kitchenSink-ephemeralWorkflowWithStoredTasks.json": StartWorkflowRequest,
    "kitchensink/kitchenSink-ephemeralWorkflowWithEphemeralTasks.json": StartWorkflowRequest,
    "workflows/conditional_switch_task_workflow_integration_test.json": WorkflowDef,
    "workflows/do_while_integration_test.json": WorkflowDef,
    "workflows/do_while_with_decision_task.json": WorkflowDef,
    "workflows/dynamic_fork_join_integration_test.json": WorkflowDef,
    "workflows/event_workflow_integration_test.json": WorkflowDef,
    "workflows/exclusive_join_integration_test.json": WorkflowDef,
    "workflows/fork_join_integration_test.json": WorkflowDef,
    "workflows/json_jq_transform_result_integration_test.json": WorkflowDef,
    "workflows/set_variable_workflow_integration_test.json": WorkflowDef,
    "workflows/simple_decision_task_integration_test.json": WorkflowDef,
    "workflows/simple_workflow_1_input_template_integration_test.json": WorkflowDef,
    "workflows/simple_workflow_with_sub_workflow_inline_def_integration_test.json": WorkflowDef,
    "workflows/sqs-complete-wait-event-handler.json": EventHandler,
    "workflows/terminate_task_failed_workflow_integration.json": WorkflowDef,
    "workflows/workflow_that_starts_another_workflow.json": WorkflowDef,
    "workflows/workflow_with_sub_workflow_1_integration_test.json": WorkflowDef,
}


def _samples_root(shared_dir: Path) -> Path:
    return shared_dir / "conductor-samples"


def test_every_sample_file_is_covered(shared_dir: Path) -> None:
    root = _samples_root(shared_dir)
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.json")}
    assert on_disk == set(SAMPLE_MODELS)


@pytest.mark.parametrize("relpath", sorted(SAMPLE_MODELS))
def test_sample_decodes_validates_and_round_trips(shared_dir: Path, relpath: str) -> None:
    model = SAMPLE_MODELS[relpath]
    data = (_samples_root(shared_dir) / relpath).read_bytes()
    decoded = codec.decode(data, model)

    # Validates: definitions (and inline definitions of start requests) have no problems.
    if model is WorkflowDef:
        assert validate_workflow_def(decoded) == []
    elif model is StartWorkflowRequest:
        assert isinstance(decoded.workflow_def, WorkflowDef)
        assert validate_workflow_def(decoded.workflow_def) == []
    elif model == list[TaskDef]:
        assert decoded
        assert all(validate_task_def(td) == [] for td in decoded)
    else:
        assert isinstance(decoded, EventHandler)

    encoded = codec.encode(decoded)
    assert codec.decode(encoded, model) == decoded
    assert wire_differences(json.loads(data), json.loads(encoded), model) == []


def test_kitchensink_structure(shared_dir: Path) -> None:
    data = (_samples_root(shared_dir) / "kitchensink/kitchensink.json").read_bytes()
    defn = codec.decode(data, WorkflowDef)
    decision = defn.tasks[3]
    assert (decision.type, decision.case_value_param) == ("DECISION", "oddEven")
    fanout = decision.decision_cases["0"][1]
    assert fanout.type == "FORK_JOIN_DYNAMIC"
    assert fanout.dynamic_fork_tasks_input_param_name == "input"
    forkx = decision.decision_cases["1"][0]
    assert [[t.task_reference_name for t in b] for b in forkx.fork_tasks] == [
        ["task_10", "wf3"],
        ["task_11", "wf4"],
    ]
    assert forkx.fork_tasks[0][1].sub_workflow_param is not None
    assert defn.output_parameters["statues"] == "${get_es_1.output..status}"


def test_ephemeral_inline_task_definition_keeps_explicit_nulls(shared_dir: Path) -> None:
    path = "kitchensink/kitchenSink-ephemeralWorkflowWithEphemeralTasks.json"
    request = codec.decode((_samples_root(shared_dir) / path).read_bytes(), StartWorkflowRequest)
    assert isinstance(request.workflow_def, WorkflowDef)
    inline = request.workflow_def.tasks[0].task_definition
    assert isinstance(inline, TaskDef)
    assert inline.owner_app is None
    assert inline.concurrent_exec_limit is None
    assert inline.poll_timeout_seconds is UNSET
    wire = codec.to_builtins(inline)
    assert wire["ownerApp"] is None
    assert "pollTimeoutSeconds" not in wire


def test_event_handler_action_wire_names(shared_dir: Path) -> None:
    path = "workflows/sqs-complete-wait-event-handler.json"
    handler = codec.decode((_samples_root(shared_dir) / path).read_bytes(), EventHandler)
    action = handler.actions[0]
    assert action.expand_inline_json is True
    assert action.complete_task
    assert action.complete_task.task_ref_name == "wait_for_sqs_event_ref"
    wire = codec.to_builtins(action)
    assert {"complete_task", "expandInlineJSON"} <= wire.keys()
    assert "completeTask" not in wire
    assert "expandInlineJson" not in wire


# --------------------------------------------------------------------------- wire details


def _task(**fields: Any) -> WorkflowTask:
    return codec.decode(json.dumps({"name": "a", "taskReferenceName": "a"} | fields), WorkflowTask)


def test_names_are_camel_case_on_the_wire() -> None:
    wire = codec.to_builtins(_task(inputParameters={"snake_key": 1}, startDelay=3))
    assert {"taskReferenceName", "inputParameters", "startDelay", "asyncComplete"} <= wire.keys()
    assert not any("_" in key for key in wire)
    assert wire["inputParameters"] == {"snake_key": 1}  # map keys are data, never renamed


def test_missing_type_is_simple_and_unknown_type_is_kept() -> None:
    assert _task().type == "SIMPLE"
    custom = _task(type="MY_WORKER_TYPE")
    assert custom.type == "MY_WORKER_TYPE"
    assert codec.to_builtins(custom)["type"] == "MY_WORKER_TYPE"


def test_workflow_defaults() -> None:
    defn = codec.decode(b'{"name": "w", "tasks": []}', WorkflowDef)
    assert defn.schema_version == 2
    assert defn.version == 1
    assert defn.restartable is True
    assert defn.timeout_policy is WorkflowTimeoutPolicy.ALERT_ONLY
    wire = codec.to_builtins(defn)
    assert wire["schemaVersion"] == 2
    assert wire["timeoutPolicy"] == "ALERT_ONLY"


def test_null_versus_omitted_nullable_fields() -> None:
    explicit = _task(description=None)
    omitted = _task()
    assert explicit.description is None
    assert omitted.description is UNSET
    assert codec.to_builtins(explicit)["description"] is None
    assert "description" not in codec.to_builtins(omitted)
    assert explicit != omitted


def test_unset_fields_are_omitted_from_output() -> None:
    wire = json.loads(codec.encode(_task()))
    for absent in ("description", "retryCount", "taskDefinition", "sink", "subWorkflowParam"):
        assert absent not in wire


def test_unknown_input_fields_are_ignored() -> None:
    body = (
        b'{"name": "w", "tasks": [{"name": "a", "taskReferenceName": "a", "sdkExtra": 1}], "x": {}}'
    )
    defn = codec.decode(body, WorkflowDef)
    wire = codec.to_builtins(defn)
    assert "x" not in wire
    assert "sdkExtra" not in wire["tasks"][0]


def test_enums_decode_and_encode_as_conductor_strings() -> None:
    td = codec.decode(
        b'{"name": "t", "retryLogic": "EXPONENTIAL_BACKOFF", "timeoutPolicy": "RETRY"}', TaskDef
    )
    assert td.retry_logic is RetryLogic.EXPONENTIAL_BACKOFF
    assert td.timeout_policy is TimeoutPolicy.RETRY
    wire = codec.to_builtins(td)
    assert (wire["retryLogic"], wire["timeoutPolicy"]) == ("EXPONENTIAL_BACKOFF", "RETRY")


def test_unknown_enum_value_is_rejected_with_its_path() -> None:
    with pytest.raises(DefinitionError) as info:
        codec.decode(b'[{"name": "t"}, {"name": "u", "retryLogic": "SOMETIMES"}]', list[TaskDef])
    [error] = info.value.errors
    assert error.path == "[1].retryLogic"
    assert "SOMETIMES" in error.message or "Invalid enum value" in error.message


def test_null_for_a_field_with_a_concrete_default_is_rejected() -> None:
    with pytest.raises(DefinitionError) as info:
        codec.decode(b'{"name": "t", "retryCount": null}', TaskDef)
    assert info.value.errors[0].path == "retryCount"


def test_start_request_null_input_is_kept_distinct_from_absent() -> None:
    explicit = codec.decode(b'{"name": "w", "input": null}', StartWorkflowRequest)
    absent = codec.decode(b'{"name": "w"}', StartWorkflowRequest)
    assert explicit.input is None
    assert absent.input == {}


def test_sub_workflow_definition_is_an_object_or_an_expression() -> None:
    inline = _task(
        type="SUB_WORKFLOW",
        subWorkflowParam={"name": "c", "workflowDefinition": {"name": "c", "tasks": []}},
    )
    assert inline.sub_workflow_param
    assert isinstance(inline.sub_workflow_param.workflow_definition, WorkflowDef)
    dynamic = _task(
        type="SUB_WORKFLOW", subWorkflowParam={"workflowDefinition": "${workflow.input.def}"}
    )
    assert dynamic.sub_workflow_param
    assert dynamic.sub_workflow_param.workflow_definition == "${workflow.input.def}"


# --------------------------------------------------------------------------- properties


@settings(max_examples=100, deadline=None)
@given(workflow_defs())
def test_generated_workflow_defs_round_trip_and_validate(raw: dict[str, Any]) -> None:
    data = json.dumps(raw).encode()
    decoded = codec.decode(data, WorkflowDef)
    encoded = codec.encode(decoded)
    assert codec.decode(encoded, WorkflowDef) == decoded
    assert wire_differences(raw, json.loads(encoded), WorkflowDef) == []
    assert validate_workflow_def(decoded) == []


@settings(max_examples=100, deadline=None)
@given(task_defs())
def test_generated_task_defs_round_trip_and_validate(raw: dict[str, Any]) -> None:
    decoded = codec.decode(json.dumps(raw), TaskDef)
    encoded = codec.encode(decoded)
    assert codec.decode(encoded, TaskDef) == decoded
    assert wire_differences(raw, json.loads(encoded), TaskDef) == []
    assert validate_task_def(decoded) == []


def test_wire_compare_detects_a_lost_and_a_changed_field() -> None:
    # The round-trip checker itself must be able to fail.
    original = {"name": "w", "tasks": [], "bogus": 1, "version": 3}
    reencoded = msgspec.to_builtins(WorkflowDef(name="w", version=4))
    assert wire_differences(original, reencoded, WorkflowDef) == [
        "$.bogus: unknown to the model, lost on re-encode",
        "$.version: 3 -> 4",
    ]
    added = msgspec.to_builtins(WorkflowDef(name="w")) | {"restartable": False}
    assert wire_differences({"name": "w"}, added, WorkflowDef) == [
        "$.restartable: added with non-default value False"
    ]
