"""Execution records: Task, Workflow, and the shapes the API returns about them.

Rules: these are Conductor's JSON models (spec sections 2.5, 2.6), timestamps in epoch
milliseconds. They are also the decider's working state, mutated in place; fields that
Conductor keeps internal and never sends are listed in INTERNAL_TASK_FIELDS so the API
layer can strip them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from core.enums import TaskStatus, WorkflowStatus
from core.models.base import UNSET, JsonMap, Record, UnsetType
from core.models.definitions import TaskDef, WorkflowDef, WorkflowTask

T = TypeVar("T")


class Task(Record):
    task_type: str
    status: TaskStatus
    reference_task_name: str
    task_id: str
    workflow_instance_id: str
    input_data: JsonMap = {}
    output_data: JsonMap = {}
    retry_count: int = 0
    seq: int = 0
    correlation_id: str | None | UnsetType = UNSET
    poll_count: int = 0
    task_def_name: str = ""
    scheduled_time: int = 0
    start_time: int = 0
    end_time: int = 0
    update_time: int = 0
    start_delay_in_seconds: int = 0
    retried_task_id: str | None | UnsetType = UNSET
    retried: bool = False
    executed: bool = False
    callback_from_worker: bool = True
    response_timeout_seconds: int = 0
    workflow_type: str | None | UnsetType = UNSET
    reason_for_incompletion: str | None | UnsetType = UNSET
    callback_after_seconds: int = 0
    worker_id: str | None | UnsetType = UNSET
    workflow_task: WorkflowTask | None | UnsetType = UNSET
    domain: str | None | UnsetType = UNSET
    rate_limit_per_frequency: int = 0
    rate_limit_frequency_in_seconds: int = 1
    external_input_payload_storage_path: str | None | UnsetType = UNSET
    external_output_payload_storage_path: str | None | UnsetType = UNSET
    workflow_priority: int = 0
    execution_name_space: str | None | UnsetType = UNSET
    isolation_group_id: str | None | UnsetType = UNSET
    iteration: int = 0
    sub_workflow_id: str | None | UnsetType = UNSET
    subworkflow_changed: bool = False
    first_start_time: int = 0
    parent_task_id: str | None | UnsetType = UNSET
    execution_metadata: JsonMap | None | UnsetType = UNSET
    task_definition: TaskDef | None | UnsetType = UNSET
    queue_wait_time: int = 0
    loop_over_task: bool = False
    # Internal (not in Conductor's JSON, listed in INTERNAL_TASK_FIELDS): absolute time a
    # WAIT completes (0 = never), and when the first attempt of this task was scheduled
    # (totalTimeoutSeconds).
    wait_timeout: int = 0
    first_scheduled_time: int = 0
    # Internal: "<loop task id>#<iteration>" for rows inside a DO_WHILE body ("" outside
    # any loop), and True while an EvaluateScript for this row awaits its ScriptResult.
    loop_scope: str = ""
    script_pending: bool = False
    # Internal: the earliest instant a Sweep has work for this row (0 = none).
    timer_at: int = 0


INTERNAL_TASK_FIELDS = frozenset(
    {"waitTimeout", "firstScheduledTime", "loopScope", "scriptPending", "timerAt"}
)


class Workflow(Record):
    workflow_id: str
    workflow_name: str
    workflow_version: int
    status: WorkflowStatus = WorkflowStatus.RUNNING
    create_time: int = 0
    update_time: int = 0
    start_time: int = 0
    end_time: int = 0
    created_by: str | None | UnsetType = UNSET
    updated_by: str | None | UnsetType = UNSET
    owner_app: str | None | UnsetType = UNSET
    parent_workflow_id: str | None | UnsetType = UNSET
    parent_workflow_task_id: str | None | UnsetType = UNSET
    tasks: list[Task] = []
    input: JsonMap = {}
    output: JsonMap = {}
    correlation_id: str | None | UnsetType = UNSET
    re_run_from_workflow_id: str | None | UnsetType = UNSET
    reason_for_incompletion: str | None | UnsetType = UNSET
    event: str | None | UnsetType = UNSET
    task_to_domain: dict[str, str] = {}
    failed_reference_task_names: list[str] = []
    failed_task_names: list[str] = []
    workflow_definition: WorkflowDef | None | UnsetType = UNSET
    external_input_payload_storage_path: str | None | UnsetType = UNSET
    external_output_payload_storage_path: str | None | UnsetType = UNSET
    priority: int = 0
    variables: JsonMap = {}
    last_retried_time: int = 0
    history: list[Any] = []
    idempotency_key: str | None | UnsetType = UNSET
    rate_limit_key: str | None | UnsetType = UNSET
    rate_limited: bool = False
    # Internal (the decider's bookkeeping, never sent): bumped by restart/rerun/retry so
    # task ids stay unique, and the index below which every task row is settled.
    restart_generation: int = 0
    scan_from: int = 0


INTERNAL_WORKFLOW_FIELDS = frozenset({"restartGeneration", "scanFrom"})


class WorkflowStatusResponse(Record):
    """`GET /workflow/{id}/status`."""

    workflow_id: str
    status: WorkflowStatus
    correlation_id: str | None | UnsetType = UNSET
    output: JsonMap | UnsetType = UNSET
    variables: JsonMap | UnsetType = UNSET


class WorkflowSummary(Record):
    """One search hit. Times are ISO-8601 UTC strings; input/output are JSON strings."""

    workflow_type: str
    version: int
    workflow_id: str
    status: WorkflowStatus
    start_time: str
    update_time: str | UnsetType = UNSET
    end_time: str | UnsetType = UNSET
    correlation_id: str | None | UnsetType = UNSET
    input: str = "{}"
    output: str = "{}"
    reason_for_incompletion: str | None | UnsetType = UNSET
    execution_time: int = 0
    event: str | None | UnsetType = UNSET
    failed_reference_task_names: str = ""
    failed_task_names: list[str] = []
    priority: int = 0
    created_by: str | None | UnsetType = UNSET
    task_to_domain: dict[str, str] = {}
    idempotency_key: str | None | UnsetType = UNSET
    parent_workflow_id: str | None | UnsetType = UNSET
    external_input_payload_storage_path: str | None | UnsetType = UNSET
    external_output_payload_storage_path: str | None | UnsetType = UNSET


class TaskSummary(Record):
    workflow_id: str
    workflow_type: str
    task_id: str
    task_def_name: str
    task_type: str
    status: TaskStatus
    scheduled_time: str
    start_time: str | UnsetType = UNSET
    update_time: str | UnsetType = UNSET
    end_time: str | UnsetType = UNSET
    correlation_id: str | None | UnsetType = UNSET
    reason_for_incompletion: str | None | UnsetType = UNSET
    execution_time: int = 0
    queue_wait_time: int = 0
    input: str = "{}"
    output: str = "{}"
    workflow_priority: int = 0
    domain: str | None | UnsetType = UNSET


class SearchResult(Record, Generic[T]):
    total_hits: int
    results: list[T]


class PollData(Record):
    queue_name: str
    domain: str | None | UnsetType = UNSET
    worker_id: str | None | UnsetType = UNSET
    last_poll_time: int = 0


class TaskExecLog(Record):
    log: str
    task_id: str | None | UnsetType = UNSET
    created_time: int = 0
