"""Event handlers (spec section 2.8): outside systems driving workflows.

Rules: action payloads are `${...}` templates over the event message, kept as raw JSON
maps here and resolved by the hot path's mapping engine.
"""

from __future__ import annotations

import msgspec

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
    # Conductor spells the payload keys in snake_case and the flag as `expandInlineJSON`,
    # so these wire names are explicit rather than derived by `rename="camel"`.
    action: str
    start_workflow: StartWorkflowAction | None | UnsetType = msgspec.field(
        default=UNSET, name="start_workflow"
    )
    complete_task: TaskDetails | None | UnsetType = msgspec.field(
        default=UNSET, name="complete_task"
    )
    fail_task: TaskDetails | None | UnsetType = msgspec.field(default=UNSET, name="fail_task")
    terminate_workflow: TerminateWorkflowAction | None | UnsetType = msgspec.field(
        default=UNSET, name="terminate_workflow"
    )
    update_workflow_variables: UpdateWorkflowVariablesAction | None | UnsetType = msgspec.field(
        default=UNSET, name="update_workflow_variables"
    )
    expand_inline_json: bool = msgspec.field(default=False, name="expandInlineJSON")


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
