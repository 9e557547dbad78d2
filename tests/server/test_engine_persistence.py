"""Workflow bodies: round trip, re-linking of workflowTask copies, compactness."""

from __future__ import annotations

import msgspec

from core.enums import TaskStatus, WorkflowStatus
from core.models import UNSET, Task, Workflow, WorkflowDef, WorkflowTask
from server.engine.persistence import (
    _Body,
    _linked_for,
    decode_body,
    encode_body,
    from_record,
    to_record,
    working_copy,
)
from tests.server.engine_helpers import simple, wf_def


def _workflow(n: int = 20) -> Workflow:
    definition = wf_def(
        "big",
        [
            simple(f"t{i}", "work", inputParameters={"i": i, "x": "${workflow.input.x}"})
            for i in range(n)
        ],
        description="a sequential workflow",
    )
    tasks = []
    for i, wt in enumerate(definition.tasks):
        tasks.append(
            Task(
                task_type="work",
                status=TaskStatus.COMPLETED,
                reference_task_name=wt.task_reference_name,
                task_id=f"id-{i}",
                workflow_instance_id="wf-1",
                input_data={"i": i, "x": 1},
                output_data={"ok": True},
                seq=i + 1,
                workflow_task=wt,
            )
        )
    # A DO_WHILE iteration row and a row whose workflowTask is not in the definition.
    loop_row = msgspec.structs.replace(tasks[0], task_id="id-loop", reference_task_name="t0__2")
    foreign = WorkflowTask(name="dyn", task_reference_name="dyn_ref", type="SIMPLE")
    dyn_row = msgspec.structs.replace(
        tasks[0], task_id="id-dyn", reference_task_name="dyn_ref", workflow_task=foreign
    )
    return Workflow(
        workflow_id="wf-1",
        workflow_name="big",
        workflow_version=1,
        status=WorkflowStatus.RUNNING,
        create_time=5,
        input={"x": 1},
        tasks=[*tasks, loop_row, dyn_row],
        workflow_definition=definition,
        correlation_id="c",
    )


def _round_trip(workflow: Workflow) -> Workflow:
    """Encode as a store receives it (body, definition beside it) and decode."""
    record = to_record(workflow)
    return decode_body(record.body, record.definition)


def test_round_trip_relinks_workflow_tasks() -> None:
    workflow = _workflow()
    decoded = _round_trip(workflow)
    assert decoded == workflow
    definition = decoded.workflow_definition
    assert isinstance(definition, type(workflow.workflow_definition))
    assert isinstance(definition, WorkflowDef)
    # Re-linked rows share the definition's node objects instead of holding copies.
    assert decoded.tasks[3].workflow_task is definition.tasks[3]
    assert decoded.tasks[-2].workflow_task is definition.tasks[0]  # t0__2 -> t0
    # Two loads of workflows of one definition share one (frozen) definition object.
    assert _round_trip(workflow).workflow_definition is definition
    assert decoded.tasks[-1].workflow_task == WorkflowTask(
        name="dyn", task_reference_name="dyn_ref", type="SIMPLE"
    )


def test_the_definition_travels_beside_the_body_named_by_its_digest() -> None:
    import hashlib

    workflow = _workflow()
    record = to_record(workflow)
    assert record.definition == msgspec.msgpack.encode(workflow.workflow_definition)
    assert record.definition_ref == hashlib.blake2b(record.definition, digest_size=16).hexdigest()
    assert record.definition not in record.body
    # Another execution of the same definition names the same stored copy.
    other = msgspec.structs.replace(workflow, workflow_id="wf-2", input={"x": 2})
    assert to_record(other).definition_ref == record.definition_ref
    # A workflow without a definition needs none.
    bare = to_record(msgspec.structs.replace(workflow, workflow_definition=UNSET, tasks=[]))
    assert (bare.definition_ref, bare.definition) == ("", b"")
    assert from_record(bare).workflow_definition is UNSET


def test_a_body_without_its_definition_is_refused_not_half_decoded() -> None:
    import pytest

    from core.errors import InternalError

    workflow = _workflow(2)
    record = to_record(workflow)
    with pytest.raises(InternalError, match=f"definition {record.definition_ref} was not loaded"):
        decode_body(record.body)
    wrong = to_record(msgspec.structs.replace(workflow, workflow_definition=wf_def("other", [])))
    with pytest.raises(InternalError, match="but its body needs"):
        decode_body(record.body, wrong.definition)


def test_body_is_compact() -> None:
    workflow = _workflow()
    slim = len(encode_body(workflow))
    naive = len(msgspec.msgpack.encode(workflow))
    # Measured: 7.8 KB instead of 21.8 KB for this 22-row workflow (17.1 KB with every
    # field but without the workflowTask copies).
    assert slim < naive * 0.4, (slim, naive)


def _full_body(workflow: Workflow) -> bytes:
    """A body as written before defaults were left out (every field encoded)."""
    definition = workflow.workflow_definition
    linked = _linked_for(definition)  # type: ignore[arg-type]
    tasks = [
        msgspec.structs.replace(t, workflow_task=UNSET)
        if t.workflow_task is linked.index.get(t.reference_task_name)
        else t
        for t in workflow.tasks
    ]
    rest = msgspec.structs.replace(workflow, tasks=tasks, workflow_definition=UNSET)
    return msgspec.msgpack.encode(
        _Body(definition=linked.encoded, workflow=msgspec.Raw(msgspec.msgpack.encode(rest)))
    )


def test_bodies_with_every_field_still_decode() -> None:
    workflow = _workflow()
    full = _full_body(workflow)
    assert len(full) > len(encode_body(workflow))
    assert decode_body(full) == workflow == _round_trip(workflow)


def test_values_other_than_the_defaults_round_trip() -> None:
    workflow = _workflow(3)
    row = msgspec.structs.replace(
        workflow.tasks[0],
        status=TaskStatus.FAILED,
        retry_count=2,
        callback_from_worker=False,  # default True
        rate_limit_frequency_in_seconds=0,  # default 1
        correlation_id=None,  # default UNSET: an explicit null is kept
        worker_id="w",
        execution_metadata={},
        timer_at=7,
        loop_scope="x#1",
        script_pending=True,
        output_data={"none": None, "zero": 0},
    )
    workflow.tasks[0] = row
    workflow.status = WorkflowStatus.PAUSED  # default RUNNING
    workflow.variables = {"v": [1, None]}
    workflow.parent_workflow_id = None
    workflow.restart_generation = 2
    decoded = _round_trip(workflow)
    assert decoded == workflow
    assert decoded.tasks[0].correlation_id is None
    assert decoded.tasks[0].callback_from_worker is False
    assert decoded.tasks[0].rate_limit_frequency_in_seconds == 0
    assert decoded.parent_workflow_id is None


def test_working_copy_is_equal_and_shares_no_top_level_state() -> None:
    workflow = _workflow(3)
    copy = working_copy(workflow)
    assert copy == workflow
    assert copy.tasks is not workflow.tasks
    assert copy.input is not workflow.input
    for mine, theirs in zip(copy.tasks, workflow.tasks, strict=True):
        assert mine is not theirs
        assert mine.input_data is not theirs.input_data
        assert mine.output_data is not theirs.output_data
        assert mine.workflow_task is theirs.workflow_task  # frozen, shared
    before = encode_body(workflow)
    copy.tasks[0].status = TaskStatus.FAILED
    copy.tasks[0].output_data["x"] = 1
    copy.tasks.append(copy.tasks[1])
    copy.output["y"] = 2
    assert encode_body(workflow) == before


def test_encoding_does_not_mutate_the_workflow() -> None:
    workflow = _workflow()
    before = msgspec.msgpack.encode(workflow)
    encode_body(workflow)
    assert msgspec.msgpack.encode(workflow) == before


def test_record_index_fields() -> None:
    workflow = _workflow(2)
    record = to_record(workflow, version=3)
    assert record.workflow_id == "wf-1"
    assert record.status == "RUNNING"
    assert record.correlation_id == "c"
    assert record.version == 3
    assert record.end_time == 0
    assert '"x":1' in record.search_text
    assert from_record(record) == workflow
