"""Status and policy enums, with Conductor's wire spellings.

Rules: values are exactly Conductor's strings (the official SDK drops a whole response
that carries a value it does not know). The property sets (terminal, successful,
retriable) live here once, as frozensets, so the decider compares by identity.
"""

from __future__ import annotations

import enum


class TaskStatus(enum.Enum):
    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    FAILED = "FAILED"
    FAILED_WITH_TERMINAL_ERROR = "FAILED_WITH_TERMINAL_ERROR"
    TIMED_OUT = "TIMED_OUT"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"


TASK_TERMINAL = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.COMPLETED_WITH_ERRORS,
        TaskStatus.FAILED,
        TaskStatus.FAILED_WITH_TERMINAL_ERROR,
        TaskStatus.TIMED_OUT,
        TaskStatus.CANCELED,
        TaskStatus.SKIPPED,
    }
)
TASK_SUCCESSFUL = frozenset(
    {
        TaskStatus.SCHEDULED,
        TaskStatus.IN_PROGRESS,
        TaskStatus.COMPLETED,
        TaskStatus.COMPLETED_WITH_ERRORS,
        TaskStatus.SKIPPED,
    }
)
TASK_RETRIABLE = frozenset(
    {
        TaskStatus.SCHEDULED,
        TaskStatus.IN_PROGRESS,
        TaskStatus.COMPLETED,
        TaskStatus.COMPLETED_WITH_ERRORS,
        TaskStatus.FAILED,
        TaskStatus.TIMED_OUT,
    }
)


class TaskResultStatus(enum.Enum):
    """What a worker may report (`TaskResult.status`)."""

    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    FAILED_WITH_TERMINAL_ERROR = "FAILED_WITH_TERMINAL_ERROR"
    CANCELED = "CANCELED"


class WorkflowStatus(enum.Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    TERMINATED = "TERMINATED"
    PAUSED = "PAUSED"


WORKFLOW_TERMINAL = frozenset(
    {
        WorkflowStatus.COMPLETED,
        WorkflowStatus.FAILED,
        WorkflowStatus.TIMED_OUT,
        WorkflowStatus.TERMINATED,
    }
)
WORKFLOW_SUCCESSFUL = frozenset(
    {WorkflowStatus.RUNNING, WorkflowStatus.COMPLETED, WorkflowStatus.PAUSED}
)


class TimeoutPolicy(enum.Enum):
    """TaskDef.timeoutPolicy."""

    RETRY = "RETRY"
    TIME_OUT_WF = "TIME_OUT_WF"
    ALERT_ONLY = "ALERT_ONLY"


class WorkflowTimeoutPolicy(enum.Enum):
    """WorkflowDef.timeoutPolicy."""

    TIME_OUT_WF = "TIME_OUT_WF"
    ALERT_ONLY = "ALERT_ONLY"


class RetryLogic(enum.Enum):
    FIXED = "FIXED"
    EXPONENTIAL_BACKOFF = "EXPONENTIAL_BACKOFF"
    LINEAR_BACKOFF = "LINEAR_BACKOFF"


class IdempotencyStrategy(enum.Enum):
    FAIL = "FAIL"
    RETURN_EXISTING = "RETURN_EXISTING"
    FAIL_ON_RUNNING = "FAIL_ON_RUNNING"


class TaskType:
    """Conductor's task type names. Not an enum: any other string is a worker task type
    (Conductor's USER_DEFINED behaviour), so `WorkflowTask.type` stays a plain `str`."""

    SIMPLE = "SIMPLE"
    DYNAMIC = "DYNAMIC"
    SWITCH = "SWITCH"
    DECISION = "DECISION"
    FORK_JOIN = "FORK_JOIN"
    FORK = "FORK"  # the row a FORK_JOIN / FORK_JOIN_DYNAMIC creates
    FORK_JOIN_DYNAMIC = "FORK_JOIN_DYNAMIC"
    JOIN = "JOIN"
    EXCLUSIVE_JOIN = "EXCLUSIVE_JOIN"
    DO_WHILE = "DO_WHILE"
    SUB_WORKFLOW = "SUB_WORKFLOW"
    START_WORKFLOW = "START_WORKFLOW"
    TERMINATE = "TERMINATE"
    SET_VARIABLE = "SET_VARIABLE"
    WAIT = "WAIT"
    HUMAN = "HUMAN"
    INLINE = "INLINE"
    LAMBDA = "LAMBDA"
    JSON_JQ_TRANSFORM = "JSON_JQ_TRANSFORM"
    HTTP = "HTTP"
    EVENT = "EVENT"
    NOOP = "NOOP"
    KAFKA_PUBLISH = "KAFKA_PUBLISH"
    USER_DEFINED = "USER_DEFINED"


# Types the server runs itself; every other type is polled by workers.
SYSTEM_TASK_TYPES = frozenset(
    {
        TaskType.DYNAMIC,
        TaskType.SWITCH,
        TaskType.DECISION,
        TaskType.FORK_JOIN,
        TaskType.FORK,
        TaskType.FORK_JOIN_DYNAMIC,
        TaskType.JOIN,
        TaskType.EXCLUSIVE_JOIN,
        TaskType.DO_WHILE,
        TaskType.SUB_WORKFLOW,
        TaskType.START_WORKFLOW,
        TaskType.TERMINATE,
        TaskType.SET_VARIABLE,
        TaskType.WAIT,
        TaskType.HUMAN,
        TaskType.INLINE,
        TaskType.LAMBDA,
        TaskType.JSON_JQ_TRANSFORM,
        TaskType.HTTP,
        TaskType.EVENT,
        TaskType.NOOP,
        TaskType.KAFKA_PUBLISH,
    }
)
