"""Request bodies: what clients and workers send (spec sections 2.4, 2.7), and the
generic response envelopes (bulk results, errors).

Rules: lenient on input (unknown fields ignored, optional fields optional); every
required field is one Conductor rejects a request without.
"""

from __future__ import annotations

from core.enums import TaskResultStatus
from core.models.base import UNSET, JsonMap, Record, UnsetType
from core.models.definitions import WorkflowDef


class StartWorkflowRequest(Record):
    name: str
    version: int | None | UnsetType = UNSET
    correlation_id: str | None | UnsetType = UNSET
    # None is kept distinct from "absent": Conductor answers 400 for an explicit null input.
    input: JsonMap | None = {}
    task_to_domain: dict[str, str] | None = {}
    workflow_def: WorkflowDef | None | UnsetType = UNSET
    external_input_payload_storage_path: str | None | UnsetType = UNSET
    priority: int | None = 0
    created_by: str | None | UnsetType = UNSET
    idempotency_key: str | None | UnsetType = UNSET
    idempotency_strategy: str | None | UnsetType = UNSET


class RerunWorkflowRequest(Record):
    re_run_from_workflow_id: str | None | UnsetType = UNSET
    workflow_input: JsonMap | None | UnsetType = UNSET
    re_run_from_task_id: str | None | UnsetType = UNSET
    task_input: JsonMap | None | UnsetType = UNSET
    correlation_id: str | None | UnsetType = UNSET


class SkipTaskRequest(Record):
    task_input: JsonMap | None | UnsetType = UNSET
    task_output: JsonMap | None | UnsetType = UNSET


class TaskExecLogEntry(Record):
    """A log line inside a TaskResult (`createdTime` may be seconds: the SDK sends those)."""

    log: str
    task_id: str | None | UnsetType = UNSET
    created_time: int | None | UnsetType = UNSET


class TaskResult(Record):
    workflow_instance_id: str
    task_id: str
    status: TaskResultStatus | UnsetType = UNSET
    output_data: JsonMap | None = {}
    reason_for_incompletion: str | None | UnsetType = UNSET
    callback_after_seconds: int | None = 0
    worker_id: str | None | UnsetType = UNSET
    logs: list[TaskExecLogEntry] | None = []
    external_output_payload_storage_path: str | None | UnsetType = UNSET
    sub_workflow_id: str | None | UnsetType = UNSET
    extend_lease: bool | None = False
    execution_metadata: JsonMap | None | UnsetType = UNSET


class BulkResponse(Record):
    bulk_error_results: dict[str, str] = {}
    bulk_successful_results: list[str] = []
    message: str = "Bulk Request has been processed."


class ValidationErrorItem(Record):
    path: str
    message: str
    invalid_value: object = None


class ErrorResponse(Record):
    status: int
    message: str
    instance: str = "podium"
    retryable: bool = False
    code: str | None | UnsetType = UNSET
    validation_errors: list[ValidationErrorItem] | UnsetType = UNSET
