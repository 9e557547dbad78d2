"""What the API sends: Conductor's JSON for executions and definitions, minus internals.

Rules:
- Responses are built from the core models with msgspec; `UNSET` fields and top-level
  nulls of tasks and workflows are omitted (Conductor's NON_NULL).
- Fields the decider keeps for itself (core.models INTERNAL_TASK_FIELDS and
  INTERNAL_WORKFLOW_FIELDS) never leave the server.
- `subWorkflowParam.idempotencyStrategy` is dropped from every WorkflowTask we return,
  at any depth: a non-null value crashes the official Python SDK (sdk-wire 0.6).
- Ids go out as `text/plain` bare strings (the SDK sends `Accept: text/plain`).
- Definitions and their nodes are frozen and shared by every workflow decoded from the
  same bytes (server/engine/persistence.py), so their scrubbed dicts (and a node's JSON)
  are built once per object and shared between responses (bounded; nothing here mutates
  a built dict).
- A task response (poll, update-v2) is encoded straight from the Task by msgspec, no
  dict in between: a copy of the task with its internal fields and top-level nulls set
  to UNSET (which msgspec leaves out) and its workflowTask as the node's cached JSON.
  The JSON equals the dict route's (`task_builtins`); tests compare the two.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core.codec import encode
from core.models import (
    INTERNAL_TASK_FIELDS,
    INTERNAL_WORKFLOW_FIELDS,
    UNSET,
    Task,
    Workflow,
    WorkflowDef,
    WorkflowTask,
)
from server.http import Response

_NESTED_LISTS = ("defaultCase", "loopOver")


def scrub_workflow_task(node: dict[str, Any]) -> None:
    """Remove `subWorkflowParam.idempotencyStrategy` from a WorkflowTask dict, in place."""
    param = node.get("subWorkflowParam")
    if isinstance(param, dict):
        param.pop("idempotencyStrategy", None)
        inline = param.get("workflowDefinition")
        if isinstance(inline, dict):
            scrub_workflow_def(inline)
    cases = node.get("decisionCases")
    if isinstance(cases, dict):
        for branch in cases.values():
            _scrub_list(branch)
    for key in _NESTED_LISTS:
        _scrub_list(node.get(key))
    forks = node.get("forkTasks")
    if isinstance(forks, list):
        for branch in forks:
            _scrub_list(branch)


def _scrub_list(tasks: Any) -> None:
    if isinstance(tasks, list):
        for node in tasks:
            if isinstance(node, dict):
                scrub_workflow_task(node)


def scrub_workflow_def(definition: dict[str, Any]) -> None:
    """Scrub every WorkflowTask of a WorkflowDef dict, in place."""
    _scrub_list(definition.get("tasks"))


def _drop_internal_and_null(data: dict[str, Any], internal: frozenset[str]) -> dict[str, Any]:
    # Conductor serialises NON_NULL: a top-level null is left out, like an UNSET field.
    return {k: v for k, v in data.items() if v is not None and k not in internal}


_SHARED_MAX = 4096
# id(frozen object) -> (the object, kept alive so its id is not reused; its scrubbed dict)
_shared: dict[int, tuple[object, dict[str, Any]]] = {}
# id(frozen WorkflowTask) -> (the node, kept alive; its scrubbed dict as JSON)
_shared_json: dict[int, tuple[WorkflowTask, msgspec.Raw]] = {}


def _frozen_builtins(obj: WorkflowDef | WorkflowTask) -> dict[str, Any]:
    hit = _shared.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    data: dict[str, Any] = msgspec.to_builtins(obj)
    if isinstance(obj, WorkflowDef):
        scrub_workflow_def(data)
    else:
        scrub_workflow_task(data)
    if len(_shared) >= _SHARED_MAX:
        _shared.clear()
    _shared[id(obj)] = (obj, data)
    return data


def _task_dict(task: Task) -> dict[str, Any]:
    node = task.workflow_task
    if isinstance(node, WorkflowTask):
        task = msgspec.structs.replace(task, workflow_task=UNSET)
    data = _drop_internal_and_null(msgspec.to_builtins(task), INTERNAL_TASK_FIELDS)
    if isinstance(node, WorkflowTask):
        data["workflowTask"] = _frozen_builtins(node)
    return data


def _frozen_json(node: WorkflowTask) -> msgspec.Raw:
    hit = _shared_json.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    raw = msgspec.Raw(encode(_frozen_builtins(node)))
    if len(_shared_json) >= _SHARED_MAX:
        _shared_json.clear()
    _shared_json[id(node)] = (node, raw)
    return raw


# Task's fields that never leave the server, and those whose type admits None.
_TASK_INTERNAL = {
    f.name: UNSET for f in msgspec.structs.fields(Task) if f.encode_name in INTERNAL_TASK_FIELDS
}
_TASK_NULLABLE = tuple(
    f.name
    for f in msgspec.structs.fields(Task)
    if f.type is Any or type(None) in getattr(f.type, "__args__", ())
)


def _task_wire(task: Task) -> Task:
    """A copy of `task` that msgspec encodes as Conductor's JSON (see module rules); it
    holds UNSET and Raw where the types say otherwise, so it is only ever encoded."""
    blank: dict[str, Any] = dict(_TASK_INTERNAL)
    for name in _TASK_NULLABLE:
        if getattr(task, name) is None:
            blank[name] = UNSET
    node = task.workflow_task
    if isinstance(node, WorkflowTask):
        blank["workflow_task"] = _frozen_json(node)
    return msgspec.structs.replace(task, **blank)


def task_json(task: Task) -> bytes:
    """A Task as Conductor's JSON bytes (equal to encoding `task_builtins(task)`)."""
    return encode(_task_wire(task))


def task_builtins(task: Task) -> dict[str, Any]:
    """A Task as Conductor's JSON (a dict), internals and nulls removed."""
    return _task_dict(task)


def workflow_builtins(workflow: Workflow) -> dict[str, Any]:
    """A Workflow as Conductor's JSON (a dict), internals and nulls removed."""
    definition = workflow.workflow_definition
    tasks = workflow.tasks
    workflow = msgspec.structs.replace(workflow, tasks=[], workflow_definition=UNSET)
    data = _drop_internal_and_null(msgspec.to_builtins(workflow), INTERNAL_WORKFLOW_FIELDS)
    data["tasks"] = [_task_dict(task) for task in tasks]
    if isinstance(definition, WorkflowDef):
        data["workflowDefinition"] = _frozen_builtins(definition)
    return data


def def_builtins(definition: WorkflowDef) -> dict[str, Any]:
    """A WorkflowDef as Conductor's JSON (a dict), scrubbed for the SDK."""
    data: dict[str, Any] = msgspec.to_builtins(definition)
    scrub_workflow_def(data)
    return data


def workflow_task_builtins(node: WorkflowTask) -> dict[str, Any]:
    """A WorkflowTask as Conductor's JSON (a dict), scrubbed for the SDK."""
    data: dict[str, Any] = msgspec.to_builtins(node)
    scrub_workflow_task(data)
    return data


def json(obj: Any, status: int = 200) -> Response:
    """A JSON response for builtins or Structs that carry no internal fields."""
    return Response.raw_json(encode(obj), status)


def workflow_response(workflow: Workflow) -> Response:
    """One workflow as a JSON response (internals removed)."""
    return Response.raw_json(encode(workflow_builtins(workflow)))


def workflows_response(workflows: list[Workflow]) -> Response:
    """A JSON list of workflows (internals removed)."""
    return Response.raw_json(encode([workflow_builtins(w) for w in workflows]))


def task_response(task: Task) -> Response:
    """One task as a JSON response (internals removed)."""
    return Response.raw_json(encode(_task_wire(task)))


def tasks_response(tasks: list[Task]) -> Response:
    """A JSON list of tasks (internals removed)."""
    return Response.raw_json(encode([_task_wire(t) for t in tasks]))


def text(value: str) -> Response:
    """A bare id as `text/plain` (what the SDK's `Accept: text/plain` calls expect)."""
    return Response.text(value)
