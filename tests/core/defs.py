"""Builders for workflow definitions as wire JSON, shared by the validation tests.

Rules: builders return plain dicts (camelCase keys) so tests decode them exactly as the
server decodes a request body; a task's name defaults to its reference name.
"""

from __future__ import annotations

from typing import Any

from core import codec
from core.models import TaskDef, WorkflowDef
from core.validation import validate_workflow_def


def task(ref: str, type_: str = "SIMPLE", **fields: Any) -> dict[str, Any]:
    """A WorkflowTask as wire JSON; the name defaults to the reference name."""
    body: dict[str, Any] = {"name": ref, "taskReferenceName": ref, "type": type_}
    body.update(fields)
    return body


def wf(*tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A WorkflowDef named "wf" with these tasks; keyword fields override or add keys."""
    body: dict[str, Any] = {"name": "wf", "tasks": list(tasks), "schemaVersion": 2}
    body.update(fields)
    return body


def errors_of(definition: dict[str, Any], task_defs: dict[str, TaskDef] | None = None) -> list[str]:
    """The validation errors of a wire-JSON definition, as `path: message` strings."""
    defn = codec.convert(definition, WorkflowDef)
    return [str(e) for e in validate_workflow_def(defn, task_defs=task_defs)]


def switch(ref: str, cases: dict[str, list[dict[str, Any]]], **fields: Any) -> dict[str, Any]:
    """A valid value-param SWITCH over `workflow.input.k` with these cases."""
    return task(
        ref,
        "SWITCH",
        evaluatorType="value-param",
        expression="k",
        inputParameters={"k": "${workflow.input.k}"},
        decisionCases=cases,
        **fields,
    )


def fork(ref: str, *branches: list[dict[str, Any]]) -> dict[str, Any]:
    return task(ref, "FORK_JOIN", forkTasks=list(branches))


def join(ref: str, *on: str) -> dict[str, Any]:
    return task(ref, "JOIN", joinOn=list(on))
