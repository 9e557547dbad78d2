# cython: annotation_typing=False
"""The decider: one event in, the workflow mutated in place, a Decision out.

Rules:
- Pure and deterministic: no IO, no clock (`now_ms` is an argument), no randomness; ids
  come from the workflow id and counters (`task_id`), so a replayed decision repeats them.
- A workflow definition is compiled once into a plan of small `Node` objects (typed in
  decider_c.pxd); each task row finds its node through its `workflow_task` reference name.
- The hot path (worker tasks, FORK/JOIN, retries, next-task resolution) lives here; the
  rarer task types and the API operations live in plain modules (flow_tasks,
  system_tasks, operations, ending) that act through the `Run` methods, so both twins
  share them. Enum members are compared by identity through module constants.
- A workflow failure is a status, never an exception; API misuse raises core.errors.
- Rows are settled (`executed` or `retried`) exactly once; `Workflow.scan_from` marks the
  prefix of settled rows so a decision does not rescan the whole history.
"""

from __future__ import annotations

from typing import Any

import cython

from core import decisions as ev
from core.enums import TaskResultStatus, TaskStatus, TimeoutPolicy, WorkflowStatus
from core.errors import NotFound
from core.models import UNSET, Task, Workflow
from hotpath import ending, flow_tasks, operations, system_tasks, timers

# The compiled twin cimports plan_c's types and functions (decider_c.pxd) and so calls
# them at C level; the pure twin imports the same names from plan_py.
if cython.compiled:
    from hotpath import plan_c as _plan
else:
    from hotpath import plan_py as _plan  # type: ignore[no-redef]
    from hotpath.plan_py import (
        Node,
        TaskCfg,
        build_ctx,
        dynamic_cfg,
        node_cfg,
        queue_name,
        resolve_domain,
        retry_delay_s,
        row_cfg,
        task_queue,
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

# --------------------------------------------------------------------------- the run


class Run:
    """The state of one decide() call; the handler modules act through its methods."""

    def __init__(self, wf: Workflow, env: ev.DeciderEnv, now: int) -> None:
        defn = wf.workflow_definition
        if defn is None or defn is UNSET:
            raise NotFound(
                f"workflow {wf.workflow_id} carries no workflowDefinition to decide with"
            )
        self.wf = wf
        self.env = env
        self.now = now
        self.plan = _plan.plan_for(defn)
        self.actions: list[Any] = []
        self.added: list[str] = []
        self.removed: list[str] = []
        self.changed = False
        self.ref_index: dict[str, Task] | None = None
        self.skipped: dict[str, Task] | None = None
        self.epoch = 0
        self.eval_epochs: dict[str, int] | None = None

    # -- lookups
    def node_of(self, t: Task) -> Node:
        return row_node(self, t)

    def task(self, task_id: str) -> Task:
        return find_task(self.wf, task_id)

    def latest(self, ref: str) -> Task | None:
        return latest_row(self, ref)

    def cfg(self, node: Node) -> TaskCfg:
        return node_cfg(node, self.env.task_defs)

    # -- mutations used by handlers
    def act(self, action: Any) -> None:
        self.actions.append(action)

    def new_task(
        self,
        node: Node,
        ref: str,
        task_type: str,
        status: TaskStatus,
        scope: Scope,
        input_data: dict[str, Any],
    ) -> Task:
        return append_row(self, node, ref, task_type, status, scope, input_data)

    def schedule(self, node: Node | None, scope: Scope) -> None:
        if node is not None:
            schedule_node(self, node, scope.suffix, scope.iteration, scope.loop_scope, None, 0)

    def schedule_next(self, t: Task, node: Node) -> None:
        schedule_successor(self, t, node)

    def render(self, template: Any, task_id: str | None) -> Any:
        return render_template(self, template, task_id)

    def render_input(self, node: Node, task_id: str) -> dict[str, Any]:
        return render_task_input(self, node, task_id)

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

    def make_scope(self, suffix: str, iteration: int, loop_scope: str) -> Scope:
        return Scope(suffix, iteration, loop_scope, None, 0)

    def scope_of(self, t: Task, node: Node) -> Scope:
        return row_scope(t, node)

    def queue_of(self, t: Task) -> str:
        return task_queue(t)

    def arm(self, t: Task) -> None:
        arm_timer(self, t, row_node(self, t))

    def cfg_of_row(self, t: Task, node: Node) -> TaskCfg:
        return row_cfg(self.plan, t, node, self.env.task_defs)

    def touch(self) -> None:
        self.epoch += 1
        self.changed = True


class Scope:
    """Where a row sits: reference suffix (`__2`), loop iteration and loop scope key."""

    def __init__(
        self, suffix: str, iteration: int, loop_scope: str, prev: Task | None, delay_s: int
    ) -> None:
        self.suffix = suffix
        self.iteration = iteration
        self.loop_scope = loop_scope
        self.prev = prev  # the failed row this one retries, if any
        self.delay_s = delay_s


def row_node(run: Run, t: Task) -> Node:
    """The plan node a row was created from (by its workflowTask's reference name)."""
    wt = t.workflow_task
    node = run.plan.nodes.get(wt.task_reference_name)  # type: ignore[union-attr]
    if node is None or node.wt is not wt:
        if node is not None and node.wt == wt:
            return node
        node = run.plan.node_for(wt, None)  # type: ignore[arg-type]
    return node


def latest_row(run: Run, ref: str) -> Task | None:
    """The latest row with this full reference name (index built once per decision)."""
    index = run.ref_index
    if index is None:
        index = {}
        for t in run.wf.tasks:
            index[t.reference_task_name] = t
        run.ref_index = index
    return index.get(ref)


def find_task(wf: Workflow, task_id: str) -> Task:
    """A row by id: O(1) through the sequence number the id ends with, else a scan."""
    tasks = wf.tasks
    try:
        seq = int(task_id[-8:], 16)
    except ValueError:
        seq = 0
    if 0 < seq <= len(tasks):
        t = tasks[seq - 1]
        if t.task_id == task_id:
            return t
    for t in tasks:
        if t.task_id == task_id:
            return t
    raise NotFound(f"No such task found by id: {task_id} in workflow {wf.workflow_id}")


def _opt(value: Any) -> Any:
    return None if value is UNSET else value


def task_id_for(wf: Workflow, seq: int) -> str:
    return f"{wf.workflow_id[:24]}{(wf.restart_generation << 32) | seq:012x}"


# --------------------------------------------------------------------------- scheduling


def render_template(run: Run, template: Any, task_id: str | None) -> Any:
    return template.render(build_ctx(run.wf, template, task_id))


def render_task_input(run: Run, node: Node, task_id: str) -> dict[str, Any]:
    """A task's input: its inputParameters (merged over the TaskDef inputTemplate)
    rendered; a key that came out null takes the raw inputTemplate value."""
    cfg = node_cfg(node, run.env.task_defs)
    template = cfg.template
    out: dict[str, Any] = template.render(build_ctx(run.wf, template, task_id))
    defaults = cfg.defaults
    if defaults:
        for key, value in defaults.items():
            if out.get(key) is None:
                out[key] = value
    return out


def append_row(
    run: Run,
    node: Node,
    ref: str,
    task_type: str,
    status: TaskStatus,
    scope: Scope,
    input_data: dict[str, Any],
) -> Task:
    """Append a row for `node`; a retry (scope.prev) carries the failed row's history."""
    wf = run.wf
    tasks = wf.tasks
    seq = tasks[-1].seq + 1 if tasks else 1
    task_id = task_id_for(wf, seq)
    now = run.now
    prev = scope.prev
    t = Task(
        task_type=task_type,
        status=status,
        reference_task_name=ref,
        task_id=task_id,
        workflow_instance_id=wf.workflow_id,
        input_data=input_data,
        seq=seq,
        correlation_id=wf.correlation_id,
        task_def_name=node.name,
        scheduled_time=now,
        update_time=now,
        workflow_type=wf.workflow_name,
        workflow_task=node.wt,
        workflow_priority=wf.priority,
        iteration=scope.iteration,
        loop_over_task=scope.iteration > 0,
        first_scheduled_time=now,
        loop_scope=scope.loop_scope,
    )
    if status is not SCHEDULED:
        t.start_time = now
    if prev is not None:
        t.retry_count = prev.retry_count + 1
        t.retried_task_id = prev.task_id
        t.reason_for_incompletion = prev.reason_for_incompletion
        t.first_scheduled_time = prev.first_scheduled_time
        t.callback_after_seconds = scope.delay_s
        t.start_delay_in_seconds = scope.delay_s
    tasks.append(t)
    run.added.append(task_id)
    if run.ref_index is not None:
        run.ref_index[ref] = t
    run.epoch += 1
    run.changed = True
    return t


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
        skipped = {}
        tasks = run.wf.tasks
        for j in range(run.wf.scan_from, len(tasks)):
            t = tasks[j]
            if t.status is SKIPPED and not t.executed:
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


def worker_row(
    run: Run,
    node: Node,
    cfg: TaskCfg,
    task_type: str,
    def_name: str,
    ref: str,
    iteration: int,
    loop_scope: str,
    prev: Task | None,
    delay_s: int,
) -> None:
    """Append a SCHEDULED worker row and queue it (after startDelay or the retry delay)."""
    wf = run.wf
    tasks = wf.tasks
    seq = tasks[-1].seq + 1 if tasks else 1
    task_id = task_id_for(wf, seq)
    input_data = render_task_input(run, node, task_id)
    now = run.now
    domain = (
        resolve_domain(wf.task_to_domain, run.env.active_domains, def_name)
        if wf.task_to_domain
        else None
    )
    delay = delay_s if prev is not None else node.start_delay
    # A copy of the node's prototype row plus the per-row fields is several times
    # cheaper than building a Task from ~30 keyword arguments.
    proto = node.proto
    if proto is None or node.proto_cfg is not cfg or proto.task_type != task_type:
        proto = Task(
            task_type=task_type,
            status=SCHEDULED,
            reference_task_name=node.ref,
            task_id="",
            workflow_instance_id="",
            task_def_name=def_name,
            response_timeout_seconds=cfg.response_timeout_s,
            workflow_task=node.wt,
            rate_limit_per_frequency=cfg.rate_limit,
            rate_limit_frequency_in_seconds=cfg.rate_freq,
            execution_name_space=cfg.namespace,
            isolation_group_id=cfg.isolation_group,
        )
        node.proto = proto
        node.proto_cfg = cfg
    t = proto.__copy__()  # type: ignore[attr-defined]
    t.task_id = task_id
    t.workflow_instance_id = wf.workflow_id
    t.input_data = input_data
    t.output_data = {}
    t.seq = seq
    t.scheduled_time = now
    t.update_time = now
    t.first_scheduled_time = now
    t.workflow_type = wf.workflow_name
    if ref is not node.ref:
        t.reference_task_name = ref
    correlation_id = wf.correlation_id
    if correlation_id is not UNSET:
        t.correlation_id = correlation_id
    if delay:
        t.start_delay_in_seconds = delay
        t.callback_after_seconds = delay
    if domain is not None:
        t.domain = domain
    if wf.priority:
        t.workflow_priority = wf.priority
    if iteration:
        t.iteration = iteration
        t.loop_over_task = True
        t.loop_scope = loop_scope
    if prev is not None:
        t.retry_count = prev.retry_count + 1
        t.retried_task_id = prev.task_id
        t.reason_for_incompletion = prev.reason_for_incompletion
        t.first_scheduled_time = prev.first_scheduled_time
    tasks.append(t)
    run.added.append(task_id)
    if run.ref_index is not None:
        run.ref_index[ref] = t
    run.epoch += 1
    run.changed = True
    arm_timer(run, t, node)
    run.actions.append(
        ev.QueueTask(
            task_id=task_id,
            queue=queue_name(task_type, domain, cfg.namespace, cfg.isolation_group),
            priority=wf.priority,
            delay_ms=delay * 1000,
        )
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


def row_scope(t: Task, node: Node) -> Scope:
    ref = t.reference_task_name
    suffix = ref[len(node.ref) :] if len(ref) > len(node.ref) else ""
    return Scope(suffix, t.iteration, t.loop_scope, None, 0)


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
            if t.executed or t.retried:
                continue
            st = t.status
            if st is SCHEDULED or st is IN_PROGRESS:
                tt = t.task_type
                if tt == "JOIN" or tt == "DO_WHILE" or tt == "EXCLUSIVE_JOIN":
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
    if kind in (K_WORKER, K_JOIN):
        schedule_successor(run, t, node)
    elif kind in (K_FORK, K_DYN_FORK):
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
    output: dict[str, Any] = {}
    done = True
    failed = False
    reasons: list[str] = []
    all_canceled = True
    with_errors = False
    for ref in join_on:
        row = latest_row(run, ref)
        if row is None:
            done = False
            continue
        if row.output_data:
            output[ref] = row.output_data
        st = row.status
        if st is SCHEDULED or st is IN_PROGRESS or not row.executed:
            done = False
        elif st is COMPLETED_WITH_ERRORS:
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


def arm_timer(run: Run, t: Task, node: Node) -> None:
    """Set `t.timer_at`: the earliest instant a Sweep has work for this row (0 = none).
    Called whenever a row is created or changes state; check_timeouts uses the same
    thresholds, so a Sweep at `timer_at` always settles what armed it."""
    kind = node.kind
    st = t.status
    at = 0
    if kind in (K_WORKER, K_DYNAMIC):
        cfg = row_cfg(run.plan, t, node, run.env.task_defs)
        enforced = cfg.timeout_policy is not P_ALERT_ONLY
        if enforced and cfg.total_timeout_s > 0:
            at = t.first_scheduled_time + cfg.total_timeout_s * 1000
        if st is SCHEDULED:
            if enforced and cfg.poll_timeout_s > 0:
                at = _min_time(at, cfg.poll_deadline(t))
        elif st is IN_PROGRESS:
            if enforced and cfg.timeout_s > 0 and t.start_time > 0:
                at = _min_time(
                    at, t.start_time + t.start_delay_in_seconds * 1000 + cfg.timeout_s * 1000
                )
            if cfg.response_timeout_s > 0:
                at = _min_time(
                    at, t.update_time + (cfg.response_timeout_s + t.callback_after_seconds) * 1000
                )
    else:
        at = system_tasks.wake_at(run, t, node)
    t.timer_at = at


def _min_time(best: int, when: int) -> int:
    return when if best == 0 or when < best else best


def next_wake(run: Run) -> int:
    """The earliest future instant a Sweep has work: the minimum of the active rows'
    timers and the workflow timeout. A timer already past is re-armed (it may be stale)
    and, if still due, asks for a Sweep right away (now + 1)."""
    wf = run.wf
    if wf.status is not WF_RUNNING:
        return 0
    now = run.now
    best = run.plan.workflow_deadline(wf)
    tasks = wf.tasks
    for j in range(wf.scan_from, len(tasks)):
        t = tasks[j]
        at = t.timer_at
        if at == 0 or t.executed or t.retried:
            continue
        st = t.status
        if not (st is SCHEDULED or st is IN_PROGRESS):
            continue
        if at <= now:
            arm_timer(run, t, row_node(run, t))
            at = t.timer_at
            if at == 0:
                continue
            if at <= now:
                at = now + 1
        if best == 0 or at < best:
            best = at
    return int(best)


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
    run = Run(workflow, env, now_ms)
    cls = type(event)
    if cls is ev.TaskUpdate:
        go = on_task_update(run, event)
    elif cls is ev.TaskPolled:
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
        if run.plan.defn.timeout_seconds > 0:
            timers.check_workflow_timeout(run)
        run_loop(run)
    if run.changed:
        workflow.update_time = now_ms
    return ev.Decision(
        actions=run.actions,
        added_task_ids=run.added,
        removed_task_ids=run.removed,
        changed=run.changed,
        next_wake_ms=next_wake(run),
    )
