"""Small builders for decider tests: definitions from Conductor JSON, a fresh workflow."""

from __future__ import annotations

from typing import Any, overload

import msgspec

from core.enums import TaskStatus, WorkflowStatus
from core.models import Task, TaskDef, Workflow, WorkflowDef

T0 = 1_700_000_000_000


def wdef(tasks: list[dict[str, Any]], **fields: Any) -> WorkflowDef:
    """A WorkflowDef from Conductor JSON (camelCase) task dicts."""
    return msgspec.convert(
        {"name": fields.pop("name", "wf"), "tasks": tasks, **fields}, WorkflowDef
    )


def tdef(name: str, **fields: Any) -> TaskDef:
    """A TaskDef from Conductor JSON (camelCase) fields."""
    return msgspec.convert({"name": name, **fields}, TaskDef)


def workflow(defn: WorkflowDef, input: dict[str, Any] | None = None, **fields: Any) -> Workflow:
    """A just-created RUNNING workflow of `defn` (call decide with StartWorkflow next)."""
    return Workflow(
        workflow_id=fields.pop("workflow_id", "0a1b2c3d-0000-4000-8000-00000000abcd"),
        workflow_name=defn.name,
        workflow_version=defn.version,
        input=dict(input or {}),
        workflow_definition=defn,
        create_time=T0,
        start_time=T0,
        **fields,
    )


def simple(ref: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"name": name or ref, "taskReferenceName": ref, "type": "SIMPLE", **fields}


@overload
def status_of(obj: Workflow) -> WorkflowStatus: ...
@overload
def status_of(obj: Task) -> TaskStatus: ...
def status_of(obj: Workflow | Task) -> WorkflowStatus | TaskStatus:
    """`obj.status`, read again after a decision changed the object in place.

    mypy keeps the narrowing of an earlier `assert obj.status is X` across the call that
    changed the object, and would call a later `obj.status is Y` impossible.
    """
    return obj.status
