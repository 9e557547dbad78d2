"""The decider's interface: the events it consumes, the actions it emits, its result.

Rules:
- `hotpath.decider.decide(workflow, event, env, now_ms) -> Decision` is a pure function of
  its arguments: it mutates `workflow` (and its tasks) in place and returns what the
  server must do. It never raises for a failure of the *workflow* (that is a status); it
  raises core.errors (IllegalTransition, NotFound, BadRequest) for API misuse such as
  resuming a workflow that is not paused.
- Ids are deterministic (derived from the workflow id and per-workflow counters), so a
  replayed decision after a crash produces the same ids.
- Actions are performed by the engine *after* the workflow and its queue operations are
  committed, except `EvaluateScript`, which the engine runs at once and answers with a
  `ScriptResult` event before committing (a chain of system tasks completes in one call).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from core.enums import TaskResultStatus, TaskStatus, WorkflowStatus
from core.models import RerunWorkflowRequest, TaskDef, WorkflowDef

# --------------------------------------------------------------------------- events


class Event(msgspec.Struct, kw_only=True, tag=True):
    """Base of every decider input."""


class StartWorkflow(Event):
    """The workflow was just created (RUNNING, input set, no tasks): schedule the first task."""


class Sweep(Event):
    """A timer or the sweeper woke the workflow: check timeouts, WAIT tasks, due retries."""


class TaskPolled(Event):
    """A worker (or the engine, for an async system task) took a SCHEDULED task."""

    task_id: str
    worker_id: str | None = None


class TaskUpdate(Event):
    """A worker's TaskResult (POST /tasks, update-v2, update by ref name, event handlers)."""

    task_id: str
    status: TaskResultStatus
    output_data: dict[str, Any] = {}
    reason_for_incompletion: str | None = None
    callback_after_seconds: int = 0
    worker_id: str | None = None
    sub_workflow_id: str | None = None
    extend_lease: bool = False


class SystemTaskResult(Event):
    """The outcome of a RunSystemTask action (HTTP, SUB_WORKFLOW start, START_WORKFLOW...)."""

    task_id: str
    status: TaskStatus
    output_data: dict[str, Any] = {}
    reason_for_incompletion: str | None = None
    sub_workflow_id: str | None = None


class ScriptResult(Event):
    """The answer to an EvaluateScript action: a value, or an error message."""

    task_id: str
    value: Any = None
    error: str | None = None
    # True when the script ran out of time (INLINE: FAILED, retryable) rather than
    # failing on its own (syntax/runtime error: FAILED_WITH_TERMINAL_ERROR).
    timed_out: bool = False


class ChildWorkflowUpdate(Event):
    """A SUB_WORKFLOW task's child changed status (usually: reached a terminal one)."""

    task_id: str
    child_workflow_id: str
    child_status: WorkflowStatus
    child_output: dict[str, Any] = {}
    reason_for_incompletion: str | None = None


class Pause(Event):
    pass


class Resume(Event):
    pass


class Terminate(Event):
    reason: str | None = None
    # Conductor runs no failure workflow for an API terminate unless asked.
    trigger_failure_workflow: bool = False


class Restart(Event):
    """Start over with the same id. The engine swaps in the latest definition first if asked."""


class Retry(Event):
    resume_subworkflow_tasks: bool = False


class Rerun(Event):
    request: RerunWorkflowRequest


class SkipTask(Event):
    task_reference_name: str
    task_input: dict[str, Any] | None = None
    task_output: dict[str, Any] | None = None


class ResetCallbacks(Event):
    """Make SCHEDULED worker tasks with a callback delay pollable now."""


class DecideNow(Event):
    """`PUT /workflow/decide/{id}`: just re-evaluate."""


DeciderEvent = (
    StartWorkflow
    | Sweep
    | TaskPolled
    | TaskUpdate
    | SystemTaskResult
    | ScriptResult
    | ChildWorkflowUpdate
    | Pause
    | Resume
    | Terminate
    | Restart
    | Retry
    | Rerun
    | SkipTask
    | ResetCallbacks
    | DecideNow
)

# --------------------------------------------------------------------------- actions


class Action(msgspec.Struct, kw_only=True, tag=True):
    """Base of every decider output."""


class QueueTask(Action):
    """Make a task pollable in `queue` after `delay_ms` (worker tasks: `[domain:]type`)."""

    task_id: str
    queue: str
    priority: int = 0
    delay_ms: int = 0


class DequeueTask(Action):
    task_id: str
    queue: str


class EvaluateScript(Action):
    """Run a script now and answer with ScriptResult(task_id).

    language: "javascript" (also for graaljs), "jq", "lambda" (wrap as a function body).
    bindings: for javascript/lambda the value of `$`; for jq the input document.
    """

    task_id: str
    language: str
    script: str
    bindings: Any = None


class RunSystemTask(Action):
    """Perform an async system task (HTTP, SUB_WORKFLOW, START_WORKFLOW, KAFKA_PUBLISH)
    and answer with SystemTaskResult(task_id) (SUB_WORKFLOW: IN_PROGRESS + sub_workflow_id,
    then ChildWorkflowUpdate when the child finishes)."""

    task_id: str
    task_type: str
    input: dict[str, Any] = {}


class StartChildWorkflow(Action):
    """Create a SUB_WORKFLOW child with a decided id (idempotent: skip if it exists)."""

    task_id: str
    workflow_id: str
    name: str
    version: int | None = None
    workflow_def: WorkflowDef | None = None
    input: dict[str, Any] = {}
    correlation_id: str | None = None
    task_to_domain: dict[str, str] = {}
    priority: int = 0


class TerminateWorkflow(Action):
    """Terminate another workflow (a child whose parent task was canceled)."""

    workflow_id: str
    reason: str


class StartFailureWorkflow(Action):
    workflow_id: str  # decided id, already written to output["conductor.failure_workflow"]
    name: str
    version: int | None = None
    input: dict[str, Any] = {}
    correlation_id: str | None = None
    task_to_domain: dict[str, str] = {}


class NotifyParent(Action):
    """This workflow (a child) changed status: feed ChildWorkflowUpdate to the parent."""

    parent_workflow_id: str
    parent_task_id: str


class PublishEvent(Action):
    """Publish to Podium's internal event queue (EVENT task sinks)."""

    queue: str
    message_id: str
    payload: dict[str, Any]


DeciderAction = (
    QueueTask
    | DequeueTask
    | EvaluateScript
    | RunSystemTask
    | StartChildWorkflow
    | TerminateWorkflow
    | StartFailureWorkflow
    | NotifyParent
    | PublishEvent
)

# --------------------------------------------------------------------------- environment / result


class DeciderEnv(msgspec.Struct, kw_only=True):
    """Read-only facts the decider may consult besides the workflow itself."""

    # Registered task definitions by name (missing SIMPLE def => Conductor's defaults).
    task_defs: Mapping[str, TaskDef] = {}
    # Task type -> domains that had a worker poll recently (taskToDomain fallback lists).
    active_domains: Mapping[str, frozenset[str]] = {}


class Decision(msgspec.Struct, kw_only=True):
    """What one decide() produced. The workflow itself was updated in place."""

    actions: list[Any] = []  # DeciderAction instances, in the order to perform them
    # Tasks added to / removed from workflow.tasks (persistence and the task-id index).
    added_task_ids: list[str] = []
    removed_task_ids: list[str] = []
    # True when anything in the workflow changed (False: nothing to persist).
    changed: bool = False
    # Absolute epoch ms at which decide must run again (Sweep), 0 = no timer needed.
    next_wake_ms: int = 0
