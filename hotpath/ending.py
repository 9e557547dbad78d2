"""How a workflow ends: completion, failure/timeout/termination, and their side effects.

Rules:
- Every path that makes a workflow terminal comes through here, so the side effects are
  the same everywhere: non-terminal rows CANCELED (queue messages removed, children of
  SUB_WORKFLOW rows terminated), failed task names recorded, output evaluated, the
  parent notified, the failure workflow started when the decider (not the API) failed it.
- Acts only through the `run` object handed in by the decider (either twin).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec

from core import decisions as ev
from core.enums import TaskStatus, WorkflowStatus
from core.models import UNSET, Task, UnsetType

_ACTIVE = (TaskStatus.SCHEDULED, TaskStatus.IN_PROGRESS)
_FAILED_FOR_NAMES = (TaskStatus.FAILED, TaskStatus.FAILED_WITH_TERMINAL_ERROR)
_UNSUCCESSFUL = (
    TaskStatus.FAILED,
    TaskStatus.FAILED_WITH_TERMINAL_ERROR,
    TaskStatus.TIMED_OUT,
    TaskStatus.CANCELED,
)


def name_uuid(text: str) -> str:
    """A name-based (MD5, version 3) UUID of `text`: Java's UUID.nameUUIDFromBytes."""
    digest = bytearray(hashlib.md5(text.encode()).digest())
    digest[6] = (digest[6] & 0x0F) | 0x30
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


def complete_workflow(run: Any) -> None:
    """Nothing is left to run: COMPLETED, or FAILED when permissive tasks failed."""
    wf = run.wf
    reasons = []
    for t in wf.tasks:
        if t.status in _UNSUCCESSFUL and not t.retried and run.node_of(t).permissive:
            reasons.append(
                f"Task {t.task_id} failed with status: {t.status.value} and reason: "
                f"'{_opt(t.reason_for_incompletion)}'"
            )
    if reasons:
        fail_workflow(run, WorkflowStatus.FAILED, ". ".join(reasons), None)
        return
    wf.status = WorkflowStatus.COMPLETED
    wf.end_time = run.now
    _record_failed_names(wf)
    wf.output = workflow_output(run)
    notify_parent(run)
    run.touch()


def fail_workflow(
    run: Any,
    status: WorkflowStatus,
    reason: str | UnsetType,
    failed_task: Task | None,
    *,
    from_api: bool = False,
    output: dict[str, Any] | None = None,
    run_failure_workflow: bool = True,
) -> None:
    """End the workflow unsuccessfully (FAILED, TIMED_OUT or TERMINATED)."""
    wf = run.wf
    wf.status = status
    wf.reason_for_incompletion = reason
    wf.end_time = run.now
    cancel_active_tasks(run, status)
    _record_failed_names(wf)
    wf.output = output if output is not None else workflow_output(run)
    if run_failure_workflow and not from_api:
        _start_failure_workflow(run, status, reason, failed_task)
    notify_parent(run)
    run.touch()


def cancel_active_tasks(run: Any, status: WorkflowStatus) -> None:
    from hotpath.system_tasks import cancel_task  # a leaf module; no import cycle at load

    for t in run.wf.tasks:
        if t.status in _ACTIVE:
            cancel_task(run, t, status)


def workflow_output(run: Any) -> dict[str, Any]:
    """outputParameters evaluated, or (when empty) the last row's output."""
    template = run.plan.output_template
    if template is not None:
        out = run.render(template, None)
        return out if isinstance(out, dict) else {}
    tasks = run.wf.tasks
    return dict(tasks[-1].output_data) if tasks else {}


def _record_failed_names(wf: Any) -> None:
    refs: dict[str, None] = {}
    names: dict[str, None] = {}
    for t in wf.tasks:
        if t.status in _FAILED_FOR_NAMES:
            refs[t.reference_task_name] = None
            names[t.task_def_name] = None
    wf.failed_reference_task_names = list(refs)
    wf.failed_task_names = list(names)


def notify_parent(run: Any) -> None:
    wf = run.wf
    parent = wf.parent_workflow_id
    if isinstance(parent, str) and parent and isinstance(wf.parent_workflow_task_id, str):
        run.act(
            ev.NotifyParent(parent_workflow_id=parent, parent_task_id=wf.parent_workflow_task_id)
        )


def _start_failure_workflow(
    run: Any, status: WorkflowStatus, reason: str | UnsetType, failed_task: Task | None
) -> None:
    wf = run.wf
    defn = run.plan.defn
    name = defn.failure_workflow
    if not isinstance(name, str) or not name:
        return
    if name.startswith("$"):
        # Conductor's form `$workflow.input.<key>`: the third dotted part is an input key.
        parts = name.split(".")
        value = wf.input.get(parts[2]) if len(parts) >= 3 else None
        if not isinstance(value, str) or not value:
            wf.output = dict(wf.output)
            wf.output["conductor.failure_workflow"] = (
                f"Failure workflow {name!r} resolved to no workflow name"
            )
            return
        name = value
    child_id = name_uuid(f"failureworkflow:{wf.workflow_id}:{wf.restart_generation}")
    payload: dict[str, Any] = dict(wf.input)
    payload["workflowId"] = wf.workflow_id
    payload["reason"] = _opt(reason)
    payload["failureStatus"] = status.value
    if failed_task is not None:
        payload["failureTaskId"] = failed_task.task_id
    payload["failedWorkflow"] = msgspec.to_builtins(wf)
    version = defn.failure_workflow_version
    run.act(
        ev.StartFailureWorkflow(
            workflow_id=child_id,
            name=name,
            version=version if isinstance(version, int) else None,
            input=payload,
            correlation_id=_opt(wf.correlation_id),
            task_to_domain=dict(wf.task_to_domain),
        )
    )
    wf.output = dict(wf.output)
    wf.output["conductor.failure_workflow"] = child_id


def _opt(value: Any) -> Any:
    return None if value is UNSET else value
