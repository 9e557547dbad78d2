"""Definitions: TaskDef, WorkflowTask, WorkflowDef (spec sections 2.1 to 2.3).

Rules: one flat `WorkflowTask` carries every task type's fields, so a task without
`type` is SIMPLE and an unknown `type` is a worker task type, both as in Conductor (a
tagged union could do neither). Per-type rules live in core/validation.py, not here.
Defaults are Conductor's; nested task lists are recursive.
"""

from __future__ import annotations

from typing import Any

from core.enums import RetryLogic, TimeoutPolicy, WorkflowTimeoutPolicy
from core.models.base import UNSET, Frozen, JsonMap, UnsetType


class SchemaDef(Frozen, frozen=True):
    name: str
    version: int = 1
    type: str = "JSON"
    data: JsonMap | None | UnsetType = UNSET
    external_ref: str | None | UnsetType = UNSET


class TaskDef(Frozen, frozen=True):
    name: str
    description: str | None | UnsetType = UNSET
    retry_count: int = 3
    retry_logic: RetryLogic = RetryLogic.FIXED
    retry_delay_seconds: int = 60
    backoff_scale_factor: int = 1
    max_retry_delay_seconds: int = 0
    backoff_jitter_ms: int = 0
    timeout_seconds: int = 0
    timeout_policy: TimeoutPolicy = TimeoutPolicy.TIME_OUT_WF
    response_timeout_seconds: int = 3600
    poll_timeout_seconds: int | None | UnsetType = UNSET
    total_timeout_seconds: int = 0
    concurrent_exec_limit: int | None | UnsetType = UNSET
    rate_limit_per_frequency: int | None | UnsetType = UNSET
    rate_limit_frequency_in_seconds: int | None | UnsetType = UNSET
    input_template: JsonMap = {}
    input_keys: list[str] = []
    output_keys: list[str] = []
    isolation_group_id: str | None | UnsetType = UNSET
    execution_name_space: str | None | UnsetType = UNSET
    owner_email: str | None | UnsetType = UNSET
    base_type: str | None | UnsetType = UNSET
    task_status_listener_enabled: bool = True
    runtime_metadata: list[str] | UnsetType = UNSET
    input_schema: SchemaDef | None | UnsetType = UNSET
    output_schema: SchemaDef | None | UnsetType = UNSET
    enforce_schema: bool = False
    owner_app: str | None | UnsetType = UNSET
    create_time: int | None | UnsetType = UNSET
    update_time: int | None | UnsetType = UNSET
    created_by: str | None | UnsetType = UNSET
    updated_by: str | None | UnsetType = UNSET


class SubWorkflowParams(Frozen, frozen=True):
    name: str | None | UnsetType = UNSET
    version: int | str | None | UnsetType = UNSET
    task_to_domain: dict[str, str] | str | None | UnsetType = UNSET
    # A WorkflowDef object, or a "${...}" expression that yields one.
    workflow_definition: WorkflowDef | str | None | UnsetType = UNSET
    priority: int | str | None | UnsetType = UNSET
    idempotency_key: str | None | UnsetType = UNSET
    # Never returned to clients: a non-null value crashes the official SDK (sdk-wire 0.6).
    idempotency_strategy: str | None | UnsetType = UNSET


class StateChangeEvent(Frozen, frozen=True):
    type: str
    payload: JsonMap = {}


class WorkflowTask(Frozen, frozen=True):
    name: str
    task_reference_name: str
    type: str = "SIMPLE"
    description: str | None | UnsetType = UNSET
    input_parameters: JsonMap = {}
    optional: bool = False
    permissive: bool = False
    start_delay: int = 0
    retry_count: int | None | UnsetType = UNSET
    task_definition: TaskDef | None | UnsetType = UNSET
    async_complete: bool = False
    rate_limited: bool | None | UnsetType = UNSET
    # DYNAMIC
    dynamic_task_name_param: str | None | UnsetType = UNSET
    # DECISION (legacy) and SWITCH
    case_value_param: str | None | UnsetType = UNSET
    case_expression: str | None | UnsetType = UNSET
    evaluator_type: str | None | UnsetType = UNSET
    expression: str | None | UnsetType = UNSET
    decision_cases: dict[str, list[WorkflowTask]] = {}
    default_case: list[WorkflowTask] = []
    # FORK_JOIN / FORK_JOIN_DYNAMIC / JOIN / EXCLUSIVE_JOIN
    fork_tasks: list[list[WorkflowTask]] = []
    dynamic_fork_tasks_param: str | None | UnsetType = UNSET
    dynamic_fork_tasks_input_param_name: str | None | UnsetType = UNSET
    dynamic_fork_join_tasks_param: str | None | UnsetType = UNSET
    join_on: list[str] = []
    default_exclusive_join_task: list[str] = []
    join_mode: str | None | UnsetType = UNSET
    join_status: str | None | UnsetType = UNSET
    # DO_WHILE
    loop_condition: str | None | UnsetType = UNSET
    loop_over: list[WorkflowTask] = []
    items: str | None | UnsetType = UNSET
    # SUB_WORKFLOW
    sub_workflow_param: SubWorkflowParams | None | UnsetType = UNSET
    # EVENT
    sink: str | None | UnsetType = UNSET
    # LAMBDA (legacy)
    script_expression: str | None | UnsetType = UNSET
    on_state_change: dict[str, list[StateChangeEvent]] | UnsetType = UNSET
    cache_config: JsonMap | None | UnsetType = UNSET
    metadata: JsonMap | None | UnsetType = UNSET


class RateLimitConfig(Frozen, frozen=True):
    rate_limit_key: str | None | UnsetType = UNSET
    concurrent_exec_limit: int | None | UnsetType = UNSET
    policy: str | None | UnsetType = UNSET


class WorkflowDef(Frozen, frozen=True):
    name: str
    tasks: list[WorkflowTask] = []
    description: str | None | UnsetType = UNSET
    version: int = 1
    input_parameters: list[str] = []
    output_parameters: JsonMap = {}
    input_template: JsonMap = {}
    variables: JsonMap = {}
    failure_workflow: str | None | UnsetType = UNSET
    failure_workflow_version: int | None | UnsetType = UNSET
    schema_version: int = 2
    restartable: bool = True
    workflow_status_listener_enabled: bool = False
    workflow_status_listener_sink: str | None | UnsetType = UNSET
    owner_email: str | None | UnsetType = UNSET
    owner_app: str | None | UnsetType = UNSET
    timeout_policy: WorkflowTimeoutPolicy = WorkflowTimeoutPolicy.ALERT_ONLY
    timeout_seconds: int = 0
    rate_limit_config: RateLimitConfig | None | UnsetType = UNSET
    input_schema: SchemaDef | None | UnsetType = UNSET
    output_schema: SchemaDef | None | UnsetType = UNSET
    enforce_schema: bool | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    cache_config: JsonMap | None | UnsetType = UNSET
    masked_fields: list[str] | UnsetType = UNSET
    create_time: int | None | UnsetType = UNSET
    update_time: int | None | UnsetType = UNSET
    created_by: str | None | UnsetType = UNSET
    updated_by: str | None | UnsetType = UNSET
