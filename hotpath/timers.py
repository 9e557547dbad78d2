"""Sweep-time checks: task timeouts (total, per attempt, poll, response) and the
workflow timeout.

Rules:
- Runs only for Sweep and DecideNow events: timers fire when the engine sweeps at the
  decision's `next_wake_ms`, which the decider computes from the same thresholds
  (`TaskCfg.poll_deadline`, `Plan.workflow_deadline`, `arm_timer`).
- ALERT_ONLY never changes a status here (Podium has no alert channel); the response
  timeout applies whatever the policy, as in Conductor.
- Acts only through the decider's `run` (either twin).
"""

from __future__ import annotations

from typing import Any

from core import decisions as ev
from core.enums import TaskStatus, TimeoutPolicy, WorkflowStatus
from core.models import Task
from hotpath import ending, system_tasks
from hotpath.plan_nodes import K_DYNAMIC, K_WORKER


def check_timeouts(run: Any) -> None:
    """Sweep: task timeouts (total, per attempt, poll, response) of worker rows, and the
    timers of system rows (WAIT ends, delayed retries, lost script requests)."""
    wf = run.wf
    now = run.now
    tasks = wf.tasks
    for j in range(wf.scan_from, len(tasks)):
        t = tasks[j]
        st = t.status
        if (
            t.executed
            or t.retried
            or not (st is TaskStatus.SCHEDULED or st is TaskStatus.IN_PROGRESS)
        ):
            continue
        node = run.node_of(t)
        if node.kind != K_WORKER and node.kind != K_DYNAMIC:
            system_tasks.on_sweep(run, t, node)
            continue
        cfg = run.cfg_of_row(t, node)
        policy = cfg.timeout_policy
        reason = None
        if policy is not TimeoutPolicy.ALERT_ONLY:
            if (
                cfg.total_timeout_s > 0
                and now >= t.first_scheduled_time + cfg.total_timeout_s * 1000
            ):
                reason = (
                    f"Task total timeout of {cfg.total_timeout_s} seconds exceeded for task "
                    f"{t.task_id}. Timeout policy configured to {policy.value}"
                )
            elif (
                cfg.timeout_s > 0
                and st is TaskStatus.IN_PROGRESS
                and t.start_time > 0
                and (now >= t.start_time + t.start_delay_in_seconds * 1000 + cfg.timeout_s * 1000)
            ):
                reason = (
                    f"Task timed out after {(now - t.start_time) // 1000} seconds. Timeout "
                    f"configured as {cfg.timeout_s} seconds. Timeout policy configured to "
                    f"{policy.value}"
                )
            elif (
                cfg.poll_timeout_s > 0
                and st is TaskStatus.SCHEDULED
                and now >= cfg.poll_deadline(t)
            ):
                reason = (
                    f"Task poll timed out after {(now - t.scheduled_time) // 1000} seconds. Poll "
                    f"timeout configured as {cfg.poll_timeout_s} seconds. Timeout policy "
                    f"configured to {policy.value}"
                )
        if reason is None:
            if (
                cfg.response_timeout_s > 0
                and st is TaskStatus.IN_PROGRESS
                and (
                    now
                    >= t.update_time + (cfg.response_timeout_s + t.callback_after_seconds) * 1000
                )
            ):
                # The response timeout applies whatever the timeout policy says: the task
                # is retried like any TIMED_OUT attempt.
                t.reason_for_incompletion = (
                    f"responseTimeout: {cfg.response_timeout_s} exceeded for the taskId: "
                    f"{t.task_id} with Task Definition: {t.task_def_name}"
                )
                time_out_task(run, t)
            continue
        t.reason_for_incompletion = reason
        time_out_task(run, t)
        if policy is TimeoutPolicy.TIME_OUT_WF:
            t.executed = True
            ending.fail_workflow(
                run,
                WorkflowStatus.TIMED_OUT,
                f"Task {t.task_id} failed with status: TIMED_OUT and reason: '{reason}'",
                t,
            )
            return


def time_out_task(run: Any, t: Task) -> None:
    if t.status is TaskStatus.SCHEDULED:
        run.act(ev.DequeueTask(task_id=t.task_id, queue=run.queue_of(t)))
    t.status = TaskStatus.TIMED_OUT
    t.end_time = run.now
    t.update_time = run.now
    run.touch()


def check_workflow_timeout(run: Any) -> None:
    """Workflow timeoutSeconds with TIME_OUT_WF: the workflow is TIMED_OUT."""
    wf = run.wf
    deadline = run.plan.workflow_deadline(wf)
    if deadline > 0 and run.now >= deadline:
        base = wf.last_retried_time if wf.last_retried_time > 0 else wf.create_time
        limit = run.plan.defn.timeout_seconds
        ending.fail_workflow(
            run,
            WorkflowStatus.TIMED_OUT,
            f"Workflow timed out after {(run.now - base) // 1000} seconds. Timeout configured "
            f"as {limit} seconds. Timeout policy configured to TIME_OUT_WF",
            None,
        )
