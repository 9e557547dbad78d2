"""The decider's fast paths give the same answers as the general ones, on both twins.

Rules: each test compares a shortcut the decider takes for speed (input/output-only
context entries, the reference index kept across decisions) with what the long way
gives, or checks the shortcut notices a change it must not miss.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from core.enums import TaskStatus
from core.models import Task, Workflow, WorkflowDef, WorkflowTask
from tests.conftest import TwinLoader


@pytest.mark.parametrize(
    ("template", "fields", "io"),
    [
        ("${t1.output.a}", {"t1": frozenset({"output"})}, {"t1": 2}),
        ("${t1.input.a} ${t1.output}", {"t1": frozenset({"input", "output"})}, {"t1": 3}),
        ("${workflow.input.x}", {"workflow": frozenset({"input"})}, {"workflow": 1}),
        ("${workflow.status}", {"workflow": frozenset({"status"})}, {"workflow": 0}),
        ("${t1}", {"t1": None}, {"t1": 0}),
        ("${t1[0]}", {"t1": None}, {"t1": 0}),
        ("${t1.output.a} ${t1}", {"t1": None}, {"t1": 0}),
        (
            "${workflow.input.${t2.output.k}}",
            {"workflow": None, "t2": frozenset({"output"})},
            {"workflow": 0, "t2": 2},
        ),
        ("${CPEWF_TASK_ID}", {"CPEWF_TASK_ID": None}, {"CPEWF_TASK_ID": 0}),
    ],
)
def test_templates_say_which_entries_of_a_root_they_read(
    twin: TwinLoader, template: str, fields: dict[str, Any], io: dict[str, int]
) -> None:
    compiled = twin("mapping").compile_template({"v": template})
    assert compiled.root_fields == fields
    assert compiled.root_io == io


def _row(ref: str, seq: int, output: dict[str, Any]) -> Task:
    return Task(
        task_type="SIMPLE",
        status=TaskStatus.COMPLETED,
        reference_task_name=ref,
        task_id=f"id-{seq}",
        workflow_instance_id="wf",
        seq=seq,
        input_data={"in": seq},
        output_data=output,
        workflow_task=WorkflowTask(name=ref, task_reference_name=ref),
    )


def _workflow(tasks: list[Task]) -> Workflow:
    defn = msgspec.convert(
        {"name": "w", "tasks": [{"name": "a", "taskReferenceName": "a"}]}, WorkflowDef
    )
    return Workflow(
        workflow_id="wf",
        workflow_name="w",
        workflow_version=1,
        input={"x": {"y": 1}},
        output={"o": 2},
        tasks=tasks,
        workflow_definition=defn,
    )


@pytest.mark.parametrize(
    "template",
    [
        {"a": "${t1.output.a}", "b": "${workflow.input.x.y}", "c": "${t1.input.in}"},
        {"s": "${workflow.status} ${t1.status} ${t1.output.a}", "w": "${workflow.output}"},
        {"whole": "${t1}", "missing": "${t9.output.a}", "id": "${CPEWF_TASK_ID}"},
        {"loop": "${t1.output.a}", "dyn": "${workflow.input.${t1.output.key}}"},
    ],
)
def test_partial_contexts_render_like_the_full_context(twin: TwinLoader, template: Any) -> None:
    plan = twin("plan")
    compiled = twin("mapping").compile_template(template)
    wf = _workflow([_row("t0", 1, {"a": 0}), _row("t1", 2, {"a": 5, "key": "x"})])
    partial = compiled.render(plan.build_ctx(wf, compiled, "tid"))
    full = compiled.render(plan.full_ctx(wf, "tid"))
    assert partial == full


def test_reference_index_follows_appends_and_list_replacements(twin: TwinLoader) -> None:
    rows = twin("rows")
    first, second = _row("a", 1, {}), _row("b", 2, {})
    tasks = [first, second]
    assert rows.ref_index(tasks)["a"] is first
    retry = _row("a", 3, {})
    tasks.append(retry)  # appended outside the decider: picked up on the next look
    index = rows.ref_index(tasks)
    assert index["a"] is retry
    assert index["b"] is second
    replaced = [first]  # a new list (how every removal is done) gets its own index
    assert rows.ref_index(replaced) == {"a": first}
    assert rows.ref_index(tasks)["a"] is retry


def test_templates_classify_their_roots_for_context_builders(twin: TwinLoader) -> None:
    compiled = twin("mapping").compile_template(
        {"a": "${workflow.input.x}", "b": "${t1.output.y}", "c": "${CPEWF_TASK_ID}"}
    )
    assert sorted(compiled.ctx_roots) == [
        ("CPEWF_TASK_ID", 0, 1),
        ("t1", 2, 2),
        ("workflow", 1, 0),
    ]
