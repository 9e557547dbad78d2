# cython: annotation_typing=False
"""The decider: one event in, the workflow mutated in place, a Decision out.

Rules:
- Pure and deterministic: no IO, no clock (`now_ms` is an argument), no randomness; ids
  come from the workflow id and counters, so a replayed decision repeats them.
- Three compiled twins share the hot path: plan_py (definitions compiled to typed `Node`
  objects), rows_py (the per-decision `Run`, row creation, mapping, timers) and this
  module (scheduling, next-task resolution, the settle loop, JOIN, retries, worker
  events). Each `*_c.pxd` cimports the one below it, so the compiled decider reads nodes
  and rows at C level. The rarer task types and the API operations live in plain
  modules (flow_tasks, system_tasks, operations, timers, ending) that act through the
  `Run` methods, so both twins share them.
- Enum members are compared by identity through module constants, never by value.
- A workflow failure is a status, never an exception; API misuse raises core.errors.
- Rows are settled (`executed` or `retried`) exactly once; `Workflow.scan_from` marks the
  prefix of settled rows so a decision does not rescan the whole history.
"""

from __future__ import annotations

from typing import Any

import cython

from core import decisions as ev
from core.enums import TaskResultStatus, TaskStatus, TimeoutPolicy, WorkflowStatus
from core.models import Task, Workflow
from hotpath import ending, flow_tasks, operations, system_tasks, timers

# The compiled twin cimports plan_c's types and functions (decider_c.pxd) and so calls
# them at C level; the pure twin imports the same names from plan_py.
if not cython.compiled:
    from hotpath.plan_py import (
        Node,
        dynamic_cfg,
        node_cfg,
        retry_delay_s,
        row_cfg,
        task_queue,
    )
    from hotpath.rows_py import (
        Run,
        Scope,
        _opt,
        append_row,
        arm_timer,
        find_task,
        latest_row,
        next_wake,
        render_template,
        row_node,
        row_scope,
        start_run,
        worker_row,
    )


# Kind codes (same values as hotpath.plan_nodes; C constants in the compiled twin).
K_WORKER = 0
K_SWITCH = 1
K_FORK = 2
K_JOIN = 3
K_DYN_FORK = 4
K_EXCL_JOIN = 5
K_DO_WHILE = 6
K_DYNAMIC = 9

SCHEDULED = TaskStatus.SCHEDULED
IN_PROGRESS = TaskStatus.IN_PROGRESS
COMPLETED = TaskStatus.COMPLETED
COMPLETED_WITH_ERRORS = TaskStatus.COMPLETED_WITH_ERRORS
FAILED = TaskStatus.FAILED
FAILED_WITH_TERMINAL_ERROR = TaskStatus.FAILED_WITH_TERMINAL_ERROR
TIMED_OUT = TaskStatus.TIMED_OUT
CANCELED = TaskStatus.CANCELED
SKIPPED = TaskStatus.SKIPPED
WF_RUNNING = WorkflowStatus.RUNNING
WF_PAUSED = WorkflowStatus.PAUSED
WF_FAILED = WorkflowStatus.FAILED
WF_TIMED_OUT = WorkflowStatus.TIMED_OUT
WF_TERMINATED = WorkflowStatus.TERMINATED
R_IN_PROGRESS = TaskResultStatus.IN_PROGRESS
R_COMPLETED = TaskResultStatus.COMPLETED
R_FAILED = TaskResultStatus.FAILED
R_FWTE = TaskResultStatus.FAILED_WITH_TERMINAL_ERROR
R_CANCELED = TaskResultStatus.CANCELED
P_RETRY = TimeoutPolicy.RETRY
P_TIME_OUT_WF = TimeoutPolicy.TIME_OUT_WF
P_ALERT_ONLY = TimeoutPolicy.ALERT_ONLY
INT32_MAX = 2147483647
# Event and action classes as module constants: one C global read instead of a module
# attribute lookup on every decision.
OPERATOR_TYPES = frozenset({"JOIN", "DO_WHILE", "EXCLUSIVE_JOIN"})
NO_ROWS: dict[str, Task] = {}  # never written to
TASK_UPDATE = ev.TaskUpdate
TASK_POLLED = ev.TaskPolled
QUEUE_TASK = ev.QueueTask
DECISION = ev.Decision

# --------------------------------------------------------------------------- the run


class DecisionRun(Run):
    """A Run that can also schedule: the scheduling half of the handlers' API."""

    def schedule(self, node: Node | None, scope: Scope) -> None:
        if node is not None:
            schedule_node(self, node, scope.suffix, scope.iteration, scope.loop_scope, None, 0)

    def schedule_next(self, t: Task, node: Node) -> None:
        schedule_successor(self, t, node)

    def schedule_after(self, node: Node, scope: Scope) -> None:
        nxt = next_node(node)
        if nxt is not None:
            schedule_node(self, nxt, scope.suffix, scope.iteration, scope.loop_scope, None, 0)

    def schedule_join(self, node: Node, ref: str, scope: Scope, join_on: list[str]) -> Task:
        return add_join_row(self, node, ref, scope, join_on)

    def schedule_dynamic_worker(self, node: Node, ref: str, name: str, scope: Scope) -> None:
        dynamic_worker_row(self, node, ref, name, scope)

    def reschedule(self, node: Node, ref: str, scope: Scope) -> None:
        retry_row(self, node, ref, scope)


# --------------------------------------------------------------------------- scheduling


def schedule_node(
    run: Run,
    node: Node,
    suffix: str,
    iteration: int,
    loop_scope: str,
    prev: Task | None,
    delay_s: int,
) -> None:
    """Create the row(s) for `node` in the given scope and start what must start now."""
    ref = node.ref + suffix if suffix else node.ref
    if prev is None:
        skipped = skipped_rows(run)
        if skipped:
            row = skipped.get(ref)
            if row is not None and not row.executed:
                # SkipTask left a SKIPPED row: hop over the task as if it had completed.
                row.executed = True
                run.epoch += 1
                run.changed = True
                schedule_successor(run, row, node)
                return
    kind = node.kind
    if kind == K_WORKER:
        schedule_worker(run, node, ref, suffix, iteration, loop_scope, prev, delay_s)
    elif kind == K_FORK:
        schedule_fork(run, node, ref, suffix, iteration, loop_scope)
    elif kind == K_JOIN:
        add_join_row(run, node, ref, Scope(suffix, iteration, loop_scope, None, 0), None)
    else:
        scope = Scope(suffix, iteration, loop_scope, prev, delay_s)
        if kind <= K_DO_WHILE or kind == K_DYNAMIC:
            flow_tasks.schedule(run, node, ref, scope)
        else:
            system_tasks.schedule(run, node, ref, scope)


def retry_row(run: Run, node: Node, ref: str, scope: Scope) -> None:
    """A new attempt of the failed row `scope.prev` (retries and the Retry operation)."""
    kind = node.kind
    if kind == K_WORKER:
        schedule_worker(
            run,
            node,
            ref,
            scope.suffix,
            scope.iteration,
            scope.loop_scope,
            scope.prev,
            scope.delay_s,
        )
    elif kind <= K_DO_WHILE or kind == K_DYNAMIC:
        flow_tasks.schedule(run, node, ref, scope)
    else:
        system_tasks.schedule(run, node, ref, scope)


def skipped_rows(run: Run) -> dict[str, Task]:
    skipped = run.skipped
    if skipped is None:
        # An unexecuted SKIPPED row is never settled, so it sits at or after scan_from.
        # Usually there is none: then the shared empty dict (read only) stands for it.
        skipped = NO_ROWS
        tasks = run.wf.tasks
        for j in range(run.wf.scan_from, len(tasks)):
            t = tasks[j]
            if t.status is SKIPPED and not t.executed:
                if skipped is NO_ROWS:
                    skipped = {}
                skipped[t.reference_task_name] = t
        run.skipped = skipped
    return skipped


def schedule_worker(
    run: Run,
    node: Node,
    ref: str,
    suffix: str,
    iteration: int,
    loop_scope: str,
    prev: Task | None,
    delay_s: int,
) -> None:
    task_type = node.name if node.type == "SIMPLE" else node.type
    worker_row(
        run,
        node,
        node_cfg(node, run.env.task_defs),
        task_type,
        node.name,
        ref,
        iteration,
        loop_scope,
        prev,
        delay_s,
    )


def dynamic_worker_row(run: Run, node: Node, ref: str, name: str, scope: Scope) -> None:
    """DYNAMIC: a worker row of the task type named by the input, with that TaskDef."""
    cfg = dynamic_cfg(run.plan, node, name, run.env.task_defs)
    worker_row(
        run,
        node,
        cfg,
        name,
        name,
        ref,
        scope.iteration,
        scope.loop_scope,
        scope.prev,
        scope.delay_s,
    )


def schedule_fork(
    run: Run, node: Node, ref: str, suffix: str, iteration: int, loop_scope: str
) -> None:
    """FORK row (COMPLETED at once), the first task of every branch, then the JOIN."""
    scope = Scope(suffix, iteration, loop_scope, None, 0)
    fork = append_row(run, node, ref, "FORK", COMPLETED, scope, {})
    fork.task_def_name = "FORK"
    fork.end_time = run.now
    fork.executed = True
    join = node.next
    if join is None or join.kind != K_JOIN:
        ending.fail_workflow(
            run, WF_FAILED, "Fork task definition is not followed by a join task", None
        )
        return
    for first in node.branches:
        if first is not None:
            schedule_node(run, first, suffix, iteration, loop_scope, None, 0)
    add_join_row(run, join, join.ref + suffix, scope, None)


def add_join_row(run: Run, node: Node, ref: str, scope: Scope, join_on: list[str] | None) -> Task:
    if join_on is None:
        join_on = (
            [r + scope.suffix for r in node.wt.join_on] if scope.suffix else list(node.wt.join_on)
        )
    input_data = render_template(run, node.template, None) if node.wt.input_parameters else {}
    input_data["joinOn"] = join_on
    return append_row(run, node, ref, "JOIN", IN_PROGRESS, scope, input_data)


def next_node(node: Node) -> Node | None:
    """The definition sibling after `node`, climbing out of SWITCH branches; None at the
    end of the workflow, of a fork branch (the JOIN exists) or of a loop body (the
    DO_WHILE row re-evaluates itself)."""
    n = node
    while True:
        nxt = n.next
        if nxt is not None:
            return nxt
        parent = n.parent
        if parent is None or parent.kind != K_SWITCH:
            return None
        n = parent


def schedule_successor(run: Run, t: Task, node: Node) -> None:
    nxt = next_node(node)
    if nxt is not None:
        ref = t.reference_task_name
        suffix = ref[len(node.ref) :] if len(ref) > len(node.ref) else ""
        schedule_node(run, nxt, suffix, t.iteration, t.loop_scope, None, 0)


# --------------------------------------------------------------------------- the loop


def run_loop(run: Run) -> None:
    """Settle every terminal row (retry it or schedule its successor) and evaluate the
    waiting JOIN / DO_WHILE / EXCLUSIVE_JOIN rows, rows appended on the way included.
    Another pass runs only when an operator row was evaluated before a later change in
    the same pass; then, with no active row left, the workflow is complete."""
    wf = run.wf
    while True:
        if wf.status is not WF_RUNNING:
            return
        tasks = wf.tasks
        i = wf.scan_from
        n = len(tasks)
        while i < n:
            t = tasks[i]
            if not (t.executed or t.retried):
                break
            i += 1
        wf.scan_from = i
        active = 0
        operators: list[Task] | None = None
        j = i
        while j < len(tasks):
            t = tasks[j]
            j += 1
            st = t.status
            if st is SCHEDULED or st is IN_PROGRESS:  # active rows are never settled
                if t.task_type in OPERATOR_TYPES:
                    evaluate_operator(run, t)
                    st = t.status
                    if st is SCHEDULED or st is IN_PROGRESS:
                        if operators is None:
                            operators = []
                        operators.append(t)
                        active += 1
                        continue
                else:
                    active += 1
                    continue
            elif t.executed or t.retried:
                continue
            if st is COMPLETED or st is COMPLETED_WITH_ERRORS:
                t.executed = True
                run.epoch += 1
                run.changed = True
                after_success(run, t, row_node(run, t))
            elif st is not SKIPPED:
                handle_failure(run, t, row_node(run, t))
            if wf.status is not WF_RUNNING:
                return
        if operators is not None and stale_operators(run, operators):
            continue
        if active == 0:
            ending.complete_workflow(run)
        return


def stale_operators(run: Run, operators: list[Task]) -> bool:
    """True if a waiting operator row was evaluated before the latest change."""
    epochs = run.eval_epochs
    for t in operators:
        st = t.status
        if (
            (st is SCHEDULED or st is IN_PROGRESS)
            and epochs is not None
            and epochs.get(t.task_id, -1) != run.epoch
        ):
            return True
    return False


def after_success(run: Run, t: Task, node: Node) -> None:
    kind = node.kind
    # `==` chains, not `in (...)`: the compiled twin compares C ints instead of building
    # a tuple of the kind constants on every call.
    if kind == K_WORKER or kind == K_JOIN:  # noqa: SIM109
        schedule_successor(run, t, node)
    elif kind == K_FORK or kind == K_DYN_FORK:  # noqa: SIM109
        if t.task_type != "FORK":
            schedule_successor(run, t, node)
    elif kind == K_SWITCH:
        if t.input_data.get("hasChildren") != "true":
            schedule_successor(run, t, node)
    else:
        system_tasks.after_success(run, t, node)


def evaluate_operator(run: Run, t: Task) -> bool:
    """Re-evaluate a JOIN / DO_WHILE / EXCLUSIVE_JOIN row if anything changed since the
    last time this decision looked at it. True when the row changed status."""
    epochs = run.eval_epochs
    if epochs is None:
        epochs = {}
        run.eval_epochs = epochs
    seen = epochs.get(t.task_id, -1)
    if seen == run.epoch:
        return False
    tt = t.task_type
    if tt == "JOIN":
        changed = evaluate_join(run, t)
    else:
        changed = flow_tasks.evaluate(run, t, row_node(run, t))
    epochs[t.task_id] = run.epoch
    return changed


def evaluate_join(run: Run, t: Task) -> bool:
    """JOIN: done when every joinOn row is settled; a failed non-optional row fails it
    (at once, or at the end when that row is permissive)."""
    join_on = t.input_data.get("joinOn") or []
    # Most evaluations find an unfinished row early: stop there, build nothing.
    for ref in join_on:
        row = latest_row(run, ref)
        if row is None or not row.executed:
            return False
    output: dict[str, Any] = {}
    done = True
    failed = False
    reasons: list[str] = []
    all_canceled = True
    with_errors = False
    for ref in join_on:
        row = latest_row(run, ref)
        assert row is not None  # every joinOn row was found above
        if row.output_data:
            output[ref] = row.output_data
        st = row.status
        if st is COMPLETED_WITH_ERRORS:
            with_errors = True
        elif st is not COMPLETED and st is not SKIPPED and not row_node(run, row).optional:
            reasons.append(_opt(row.reason_for_incompletion) or "")
            if st is not CANCELED:
                all_canceled = False
            if not row_node(run, row).permissive:
                failed = True
    now = run.now
    if failed or (done and reasons):
        t.status = CANCELED if all_canceled else FAILED
        t.reason_for_incompletion = " ".join(reasons)
    elif done:
        t.status = COMPLETED_WITH_ERRORS if with_errors else COMPLETED
    else:
        return False
    t.output_data = output
    t.end_time = now
    t.update_time = now
    run.epoch += 1
    run.changed = True
    return True


# --------------------------------------------------------------------------- failures


def handle_failure(run: Run, t: Task, node: Node) -> None:
    """A terminal, unsuccessful row: retry it, or let the flow continue (optional /
    permissive), or end the workflow."""
    st = t.status
    cfg = row_cfg(run.plan, t, node, run.env.task_defs)
    now = run.now
    if (
        (st is FAILED or st is TIMED_OUT)
        and not node.never_retried
        and t.retry_count < cfg.retry_count
        and not (
            cfg.total_timeout_s > 0 and now - t.first_scheduled_time >= cfg.total_timeout_s * 1000
        )
    ):
        t.retried = True
        run.epoch += 1
        run.changed = True
        if node.kind == K_WORKER:
            ref = t.reference_task_name
            worker_row(
                run,
                node,
                cfg,
                node.name if node.type == "SIMPLE" else node.type,
                node.name,
                ref,
                t.iteration,
                t.loop_scope,
                t,
                retry_delay_s(cfg, t),
            )
        else:
            scope = row_scope(t, node)
            scope.prev = t
            scope.delay_s = retry_delay_s(cfg, t)
            retry_row(run, node, t.reference_task_name, scope)
        return
    if node.optional:
        t.status = COMPLETED_WITH_ERRORS
        t.executed = True
        run.epoch += 1
        run.changed = True
        schedule_successor(run, t, node)
        return
    if node.permissive:
        t.executed = True
        run.epoch += 1
        run.changed = True
        after_success(run, t, node)
        return
    wf_status = WF_TERMINATED if st is CANCELED else WF_TIMED_OUT if st is TIMED_OUT else WF_FAILED
    reason = (
        f"Task {t.task_id} failed with status: {wf_status.value} and reason: "
        f"'{_opt(t.reason_for_incompletion)}'"
    )
    t.executed = True
    ending.fail_workflow(run, wf_status, reason, t)


# --------------------------------------------------------------------------- timers


# --------------------------------------------------------------------------- events


def on_task_polled(run: Run, event: ev.TaskPolled) -> bool:
    t = find_task(run.wf, event.task_id)
    if t.status is not SCHEDULED or (
        run.wf.status is not WF_RUNNING and run.wf.status is not WF_PAUSED
    ):
        return False  # a stale queue message: nothing to start
    now = run.now
    t.status = IN_PROGRESS
    if t.start_time == 0:
        t.start_time = now
    t.callback_after_seconds = 0
    t.worker_id = event.worker_id
    t.poll_count += 1
    t.update_time = now
    run.changed = True
    arm_timer(run, t, row_node(run, t))
    return False


def on_task_update(run: Run, event: ev.TaskUpdate) -> bool:
    """Apply a worker's TaskResult. True when the workflow must be decided."""
    wf = run.wf
    t = find_task(wf, event.task_id)
    now = run.now
    st = t.status
    if (wf.status is not WF_RUNNING and wf.status is not WF_PAUSED) or not (
        st is SCHEDULED or st is IN_PROGRESS
    ):
        return False  # updates to terminal tasks or workflows are ignored (Conductor: 200)
    if event.extend_lease:
        t.update_time = now
        run.changed = True
        arm_timer(run, t, row_node(run, t))
        return False
    node = row_node(run, t)
    rs = event.status
    t.output_data = event.output_data
    if event.reason_for_incompletion is not None:
        t.reason_for_incompletion = event.reason_for_incompletion[:500]
    if event.worker_id is not None:
        t.worker_id = event.worker_id
    if event.sub_workflow_id is not None:
        t.sub_workflow_id = event.sub_workflow_id
    t.update_time = now
    run.epoch += 1
    run.changed = True
    if rs is R_IN_PROGRESS:
        t.callback_after_seconds = event.callback_after_seconds
        if node.kind == K_WORKER or node.kind == K_DYNAMIC:
            # The worker checks in again later: back to SCHEDULED, redelivered after the delay.
            t.status = SCHEDULED
            run.actions.append(
                ev.QueueTask(
                    task_id=t.task_id,
                    queue=task_queue(t),
                    priority=wf.priority,
                    delay_ms=event.callback_after_seconds * 1000,
                )
            )
        arm_timer(run, t, node)
        return False
    if rs is R_COMPLETED:
        t.status = COMPLETED
    elif rs is R_FAILED:
        t.status = FAILED
    elif rs is R_FWTE:
        t.status = FAILED_WITH_TERMINAL_ERROR
    else:
        t.status = CANCELED
    t.end_time = now
    if st is SCHEDULED:
        run.actions.append(ev.DequeueTask(task_id=t.task_id, queue=task_queue(t)))
    if node.kind != K_WORKER:
        system_tasks.on_external_update(run, t, node)
    return True


def decide(workflow: Workflow, event: Any, env: ev.DeciderEnv, now_ms: int) -> ev.Decision:
    """Apply one event to `workflow` (mutated in place) and say what must happen next.

    Args:
        workflow: the working state, with its `workflowDefinition` snapshot.
        event: one of core.decisions' events.
        env: registered task definitions and active worker domains.
        now_ms: the current time, epoch milliseconds.

    Returns:
        The actions to perform, the task rows added/removed, whether anything changed,
        and when the next Sweep is due (0 = none).

    Raises:
        NotFound: an event names a task the workflow does not have.
        IllegalTransition: an API operation the workflow's status does not allow.
    """
    if cython.compiled:
        # Allocated directly and set up by a C call: no generic type call, no argument
        # tuple to unpack.
        run = DecisionRun.__new__(DecisionRun)
        start_run(run, workflow, env, now_ms)
    else:
        run = DecisionRun(workflow, env, now_ms)
    cls = type(event)
    if cls is TASK_UPDATE:
        go = on_task_update(run, event)
    elif cls is TASK_POLLED:
        go = on_task_polled(run, event)
    elif cls is ev.StartWorkflow:
        go = operations.start_workflow(run)
    elif cls is ev.Sweep or cls is ev.DecideNow:
        go = workflow.status is WF_RUNNING
        if go:
            timers.check_workflow_timeout(run)
            if workflow.status is WF_RUNNING:
                timers.check_timeouts(run)
            run.changed = True
    elif cls is ev.ScriptResult:
        go = system_tasks.on_script_result(run, event)
    elif cls is ev.SystemTaskResult:
        go = system_tasks.on_system_result(run, event)
    elif cls is ev.ChildWorkflowUpdate:
        go = system_tasks.on_child_update(run, event)
    else:
        go = operations.apply(run, event)
    if go and workflow.status is WF_RUNNING:
        if run.plan.defn_timeout_s > 0:
            timers.check_workflow_timeout(run)
        run_loop(run)
    if run.prunes is not None:
        flow_tasks.prune_loops(run)
    if run.changed:
        workflow.update_time = now_ms
    return DECISION(
        actions=run.actions,
        added_task_ids=run.added,
        removed_task_ids=run.removed,
        changed=run.changed,
        next_wake_ms=next_wake(run),
    )
