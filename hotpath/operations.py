"""API operations on a workflow: pause, resume, terminate, restart, retry, rerun, skip
task, reset callbacks, decide now.

Rules:
- Misuse raises core.errors with Conductor's status semantics, except where Conductor's
  status is a bug (resume of a non-paused workflow: 409, not 500); docs/compatibility.md
  lists each choice.
- `apply` returns True when the decider loop must run afterwards.
- Acts only through the decider's `run` (either twin); never imports the decider.
"""

from __future__ import annotations

from typing import Any

from core import decisions as ev
from core.enums import WORKFLOW_TERMINAL, TaskStatus, WorkflowStatus
from core.errors import BadRequest, IllegalTransition, NotFound
from core.models import UNSET, Task
from hotpath import ending
from hotpath.plan_nodes import K_DO_WHILE, K_DYNAMIC, K_EXCL_JOIN, K_JOIN, K_WORKER

RUNNING = WorkflowStatus.RUNNING
PAUSED = WorkflowStatus.PAUSED
_RETRYABLE_ROWS = (
    TaskStatus.FAILED,
    TaskStatus.FAILED_WITH_TERMINAL_ERROR,
    TaskStatus.TIMED_OUT,
    TaskStatus.CANCELED,
)


def apply(run: Any, event: Any) -> bool:
    cls = type(event)
    if cls is ev.Pause:
        return _pause(run)
    if cls is ev.Resume:
        return _resume(run)
    if cls is ev.Terminate:
        return _terminate(run, event)
    if cls is ev.Restart:
        return _restart(run)
    if cls is ev.Retry:
        return _retry(run)
    if cls is ev.Rerun:
        return _rerun(run, event)
    if cls is ev.SkipTask:
        return _skip(run, event)
    if cls is ev.ResetCallbacks:
        return _reset_callbacks(run)
    raise BadRequest(f"the decider does not handle {cls.__name__} events")


def start_workflow(run: Any) -> bool:
    """StartWorkflow: defaults from the definition, then the first task."""
    wf = run.wf
    if wf.tasks:
        return False  # already started: a replayed StartWorkflow changes nothing
    defn = run.plan.defn
    if defn.input_template:
        for key, value in defn.input_template.items():
            if key not in wf.input:
                wf.input[key] = value
    if defn.variables and not wf.variables:
        wf.variables = dict(defn.variables)
    if wf.start_time == 0:
        wf.start_time = wf.create_time or run.now
    if wf.create_time == 0:
        wf.create_time = run.now
    run.changed = True
    first = run.plan.first
    if first is None:
        ending.complete_workflow(run)
        return False
    run.schedule(first, run.make_scope("", 0, ""))
    return True


def _pause(run: Any) -> bool:
    wf = run.wf
    if wf.status in WORKFLOW_TERMINAL:
        raise IllegalTransition(
            f"Workflow {wf.workflow_id} has ended with status {wf.status.value}; "
            "it cannot be paused"
        )
    if wf.status is RUNNING:
        wf.status = PAUSED
        run.touch()
    return False


def _resume(run: Any) -> bool:
    wf = run.wf
    if wf.status is not PAUSED:
        raise IllegalTransition(
            f"Workflow {wf.workflow_id} is {wf.status.value}, not PAUSED; only a paused "
            "workflow can be resumed"
        )
    wf.status = RUNNING
    wf.last_retried_time = run.now
    run.touch()
    return True


def _terminate(run: Any, event: ev.Terminate) -> bool:
    wf = run.wf
    if wf.status is WorkflowStatus.COMPLETED:
        raise IllegalTransition(f"Cannot terminate a COMPLETED workflow: {wf.workflow_id}")
    if wf.status is WorkflowStatus.TERMINATED:
        return False
    reason = event.reason
    if wf.status in WORKFLOW_TERMINAL:
        # A FAILED or TIMED_OUT workflow becomes TERMINATED; its rows already ended.
        wf.status = WorkflowStatus.TERMINATED
        if reason:
            wf.reason_for_incompletion = reason
        run.touch()
        return False
    ending.fail_workflow(
        run,
        WorkflowStatus.TERMINATED,
        reason if reason is not None else UNSET,
        None,
        from_api=not event.trigger_failure_workflow,
    )
    return False


def _require_terminal(run: Any, verb: str) -> None:
    wf = run.wf
    if wf.status not in WORKFLOW_TERMINAL:
        raise IllegalTransition(
            f"Workflow {wf.workflow_id} is {wf.status.value}; "
            f"only a terminal workflow can be {verb}"
        )


def _reset_workflow(run: Any) -> None:
    wf = run.wf
    wf.status = RUNNING
    wf.reason_for_incompletion = UNSET
    wf.end_time = 0
    wf.output = {}
    wf.failed_reference_task_names = []
    wf.failed_task_names = []
    wf.scan_from = 0
    run.ref_index = None
    run.skipped = None
    run.touch()


def _drop_all_tasks(run: Any) -> None:
    wf = run.wf
    run.removed.extend(t.task_id for t in wf.tasks)
    wf.tasks = []
    wf.restart_generation += 1


def _restart(run: Any) -> bool:
    _require_terminal(run, "restarted")
    wf = run.wf
    if wf.status is WorkflowStatus.COMPLETED and not run.plan.defn.restartable:
        raise NotFound(
            f"Workflow {wf.workflow_id} is COMPLETED and its definition is not restartable"
        )
    _drop_all_tasks(run)
    _reset_workflow(run)
    wf.create_time = run.now
    wf.start_time = run.now
    wf.last_retried_time = 0
    wf.variables = dict(run.plan.defn.variables)
    return _start_again(run)


def _start_again(run: Any) -> bool:
    first = run.plan.first
    if first is None:
        ending.complete_workflow(run)
        return False
    run.schedule(first, run.make_scope("", 0, ""))
    return True


def _rerun(run: Any, event: ev.Rerun) -> bool:
    _require_terminal(run, "rerun")
    wf = run.wf
    request = event.request
    if isinstance(request.workflow_input, dict):
        wf.input = dict(request.workflow_input)
    if isinstance(request.correlation_id, str):
        wf.correlation_id = request.correlation_id
    from_id = request.re_run_from_task_id
    if not isinstance(from_id, str) or not from_id:
        _drop_all_tasks(run)
        _reset_workflow(run)
        wf.last_retried_time = run.now
        return _start_again(run)
    row = next((t for t in wf.tasks if t.task_id == from_id), None)
    if row is None:
        raise BadRequest(f"Task {from_id} not found in workflow {wf.workflow_id}")
    node = run.node_of(row)
    keep = [t for t in wf.tasks if t.seq < row.seq]
    run.removed.extend(t.task_id for t in wf.tasks if t.seq > row.seq)
    task_input = request.task_input
    _reset_workflow(run)
    wf.last_retried_time = run.now
    wf.restart_generation += 1  # fresh ids: workers may still hold the removed ones
    if node.kind in (K_WORKER, K_DYNAMIC):
        # Re-run the row in place: SCHEDULED again, with new input when given.
        wf.tasks = [*keep, row]
        _reset_row(row, run.now)
        if isinstance(task_input, dict):
            row.input_data = dict(task_input)
        run.arm(row)
        run.act(ev.QueueTask(task_id=row.task_id, queue=run.queue_of(row), priority=wf.priority))
        return True
    run.removed.append(row.task_id)
    wf.tasks = keep
    run.schedule(node, run.scope_of(row, node))
    return True


def _reset_row(row: Task, now: int) -> None:
    row.status = TaskStatus.SCHEDULED
    row.output_data = {}
    row.executed = False
    row.retried = False
    row.start_time = 0
    row.end_time = 0
    row.poll_count = 0
    row.callback_after_seconds = 0
    row.reason_for_incompletion = UNSET
    row.scheduled_time = now
    row.update_time = now
    row.script_pending = False


def _retry(run: Any) -> bool:
    _require_terminal(run, "retried")
    wf = run.wf
    latest: dict[str, Task] = {}
    for t in wf.tasks:
        latest[t.reference_task_name] = t
    failed = [t for t in latest.values() if t.status in _RETRYABLE_ROWS]
    if not failed and wf.status is not WorkflowStatus.TIMED_OUT:
        raise IllegalTransition(
            f"Workflow {wf.workflow_id} is {wf.status.value} and has no failed task to retry"
        )
    _reset_workflow(run)
    wf.last_retried_time = run.now
    # Flow operators are reset in place; every other failed row is scheduled again.
    for t in failed:
        node = run.node_of(t)
        if node.kind in (K_JOIN, K_EXCL_JOIN, K_DO_WHILE):
            t.status = TaskStatus.IN_PROGRESS
            t.executed = False
            t.end_time = 0
            t.reason_for_incompletion = UNSET
    for t in failed:
        node = run.node_of(t)
        if node.kind in (K_JOIN, K_EXCL_JOIN, K_DO_WHILE):
            continue
        t.retried = True
        t.executed = True
        scope = run.scope_of(t, node)
        scope.prev = t
        run.reschedule(node, t.reference_task_name, scope)
    ending.notify_parent(run)
    return True


def _skip(run: Any, event: ev.SkipTask) -> bool:
    wf = run.wf
    if wf.status is not RUNNING:
        raise IllegalTransition(
            f"Workflow {wf.workflow_id} is {wf.status.value}; "
            "tasks can be skipped only in a RUNNING workflow"
        )
    ref = event.task_reference_name
    node = run.plan.nodes.get(ref)
    if node is None:
        raise NotFound(f"Workflow {wf.workflow_id} has no task with reference name {ref!r}")
    if any(t.reference_task_name == ref for t in wf.tasks):
        raise IllegalTransition(
            f"Task {ref!r} of workflow {wf.workflow_id} is already scheduled; it cannot be skipped"
        )
    t = run.new_task(
        node,
        ref,
        node.name if node.type == "SIMPLE" else node.type,
        TaskStatus.SKIPPED,
        run.make_scope("", 0, ""),
        dict(event.task_input or {}),
    )
    t.output_data = dict(event.task_output or {})
    t.end_time = run.now
    return False


def _reset_callbacks(run: Any) -> bool:
    wf = run.wf
    if wf.status in WORKFLOW_TERMINAL:
        raise IllegalTransition(f"Workflow {wf.workflow_id} has ended; no callbacks to reset")
    for t in wf.tasks:
        if t.status is TaskStatus.SCHEDULED and t.callback_after_seconds > 0:
            node = run.node_of(t)
            if node.kind in (K_WORKER, K_DYNAMIC):
                t.callback_after_seconds = 0
                t.update_time = run.now
                run.touch()
                run.arm(t)
                run.act(
                    ev.QueueTask(task_id=t.task_id, queue=run.queue_of(t), priority=wf.priority)
                )
    return False
