"""Event handlers (spec section 2.8): outside systems driving workflows.

Rules: action payloads are `${...}` templates over the event message, kept as raw JSON
maps here and resolved by the hot path's mapping engine.
"""

from __future__ import annotations

from core.models.base import UNSET, Frozen, JsonMap, UnsetType


class StartWorkflowAction(Frozen, frozen=True):
    name: str | None | UnsetType = UNSET
    version: int | None | UnsetType = UNSET
    correlation_id: str | None | UnsetType = UNSET
    input: JsonMap = {}
    task_to_domain: dict[str, str] | None | UnsetType = UNSET


class TaskDetails(Frozen, frozen=True):
    workflow_id: str | None | UnsetType = UNSET
    task_ref_name: str | None | UnsetType = UNSET
    task_id: str | None | UnsetType = UNSET
    output: JsonMap = {}
    reason_for_incompletion: str | None | UnsetType = UNSET


class TerminateWorkflowAction(Frozen, frozen=True):
    workflow_id: str | None | UnsetType = UNSET
    termination_reason: str | None | UnsetType = UNSET


class UpdateWorkflowVariablesAction(Frozen, frozen=True):
    workflow_id: str | None | UnsetType = UNSET
    variables: JsonMap = {}
    append_array: bool | None | UnsetType = UNSET


class EventAction(Frozen, frozen=True):
    action: str
    start_workflow: StartWorkflowAction | None | UnsetType = UNSET
    complete_task: TaskDetails | None | UnsetType = UNSET
    fail_task: TaskDetails | None | UnsetType = UNSET
    terminate_workflow: TerminateWorkflowAction | None | UnsetType = UNSET
    update_workflow_variables: UpdateWorkflowVariablesAction | None | UnsetType = UNSET
    expand_inline_json: bool = False


class EventHandler(Frozen, frozen=True):
    name: str
    event: str
    actions: list[EventAction] = []
    condition: str | None | UnsetType = UNSET
    evaluator_type: str | None | UnsetType = UNSET
    active: bool = False


class EventExecution(Frozen, frozen=True):
    id: str
    message_id: str
    name: str
    event: str
    created: int
    status: str
    action: str
    output: JsonMap = {}
