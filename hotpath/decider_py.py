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

import zlib
from typing import Any

import cython

from core import decisions as ev
from core.enums import RetryLogic, TaskResultStatus, TaskStatus, TimeoutPolicy, WorkflowStatus
from core.errors import IllegalTransition, NotFound
from core.models import UNSET, Task, TaskDef, Workflow, WorkflowDef, WorkflowTask
from hotpath import ending, flow_tasks, operations, system_tasks
from hotpath.plan_nodes import KIND_BY_TYPE, NEVER_RETRIED

# Each twin renders with the mapping twin of the same kind, so the pure-Python decider
# is measured (and tested) on pure Python throughout.
if cython.compiled:
    from hotpath.mapping_c import compile_template
else:
    from hotpath.mapping_py import compile_template

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

# TaskDef used for a SIMPLE task without a registered definition (Conductor's defaults),
# and the ad-hoc one for system tasks (no retries, no response timeout).
DEFAULT_TASK_DEF = TaskDef(name="default")
SYSTEM_TASK_DEF = TaskDef(name="system", retry_count=0, response_timeout_seconds=0)
_NO_SRC = object()

# --------------------------------------------------------------------------- plan


class TaskCfg:
    """The numbers a task row needs from its TaskDef, read once per (node, TaskDef)."""

    def __init__(self, node: Node, td: TaskDef) -> None:
        self.retry_count = node.retry_override if node.retry_override >= 0 else td.retry_count
        logic = td.retry_logic
        self.retry_logic = (
            2 if logic is RetryLogic.EXPONENTIAL_BACKOFF else 1 if logic is RetryLogic.LINEAR_BACKOFF else 0
        )
        self.retry_delay_s = td.retry_delay_seconds
        self.backoff_scale = td.backoff_scale_factor
        self.max_retry_delay_s = td.max_retry_delay_seconds
        self.jitter_ms = td.backoff_jitter_ms
        self.timeout_s = td.timeout_seconds
        self.timeout_policy = td.timeout_policy
        self.response_timeout_s = td.response_timeout_seconds
        poll = td.poll_timeout_seconds
        self.poll_timeout_s = poll if isinstance(poll, int) else 0
        self.total_timeout_s = td.total_timeout_seconds
        rl = td.rate_limit_per_frequency
        self.rate_limit = rl if isinstance(rl, int) else 0
        rf = td.rate_limit_frequency_in_seconds
        self.rate_freq = rf if isinstance(rf, int) else 1
        ig = td.isolation_group_id
        self.isolation_group = ig if isinstance(ig, str) and ig else None
        ns = td.execution_name_space
        self.namespace = ns if isinstance(ns, str) and ns else None
        self.defaults = td.input_template
        if td.input_template:
            merged = dict(td.input_template)
            merged.update(node.wt.input_parameters)
            self.template = compile_template(merged)
        else:
            self.template = node.template


class Node:
    """One WorkflowTask of a definition, with its neighbours resolved to references."""

    def __init__(self, wt: WorkflowTask, parent: Node | None, loop: Node | None) -> None:
        self.wt = wt
        self.ref = wt.task_reference_name
        self.name = wt.name
        self.type = wt.type
        self.kind = KIND_BY_TYPE.get(wt.type, K_WORKER)
        self.parent = parent
        self.loop = loop
        self.next: Node | None = None
        self.template = compile_template(wt.input_parameters)
        self.optional = wt.optional
        self.permissive = wt.permissive
        self.start_delay = wt.start_delay
        rc = wt.retry_count
        self.retry_override = rc if isinstance(rc, int) else -1
        self.never_retried = self.kind in NEVER_RETRIED
        self.branches: list[Node | None] = []  # FORK_JOIN: first node of each branch
        self.cases: dict[str, Node | None] = {}  # SWITCH: first node of each case
        self.default: Node | None = None
        self.body: Node | None = None  # DO_WHILE: first node of loopOver
        self.cfg: TaskCfg | None = None
        self.cfg_src: object = _NO_SRC


class Plan:
    """A compiled WorkflowDef: nodes by reference name and the first node."""

    def __init__(self, defn: WorkflowDef) -> None:
        self.defn = defn
        self.nodes: dict[str, Node] = {}
        self.first = self.compile_list(defn.tasks, None, None)
        self.output_template = (
            compile_template(defn.output_parameters) if defn.output_parameters else None
        )
        self.dynamic_cfgs: dict[str, tuple[TaskDef | None, TaskCfg]] = {}

    def compile_list(self, tasks: list[WorkflowTask], parent: Node | None, loop: Node | None) -> Node | None:
        first: Node | None = None
        prev: Node | None = None
        for wt in tasks:
            node = Node(wt, parent, loop)
            self.nodes[node.ref] = node
            if prev is None:
                first = node
            else:
                prev.next = node
            prev = node
            if node.kind == K_FORK:
                node.branches = [self.compile_list(b, node, loop) for b in wt.fork_tasks]
            elif node.kind == K_SWITCH:
                node.cases = {k: self.compile_list(v, node, loop) for k, v in wt.decision_cases.items()}
                node.default = self.compile_list(wt.default_case, node, loop)
            elif node.kind == K_DO_WHILE:
                node.body = self.compile_list(wt.loop_over, node, node)
        return first

    def node_for(self, wt: WorkflowTask, parent: Node | None) -> Node:
        """The node of a task generated at run time (dynamic fork), compiled on first use."""
        node = self.nodes.get(wt.task_reference_name)
        if node is None or node.wt != wt:
            self.compile_list([wt], parent, parent.loop if parent is not None else None)
            node = self.nodes[wt.task_reference_name]
        return node


_PLANS: dict[int, tuple[WorkflowDef, Plan]] = {}
_PLANS_BY_NAME: dict[tuple[str, int], tuple[WorkflowDef, Plan]] = {}
_PLAN_CACHE_MAX = 2048


def plan_for(defn: WorkflowDef) -> Plan:
    """The compiled plan of a definition: by identity, else by equal (name, version)."""
    hit = _PLANS.get(id(defn))
    if hit is not None and hit[0] is defn:
        return hit[1]
    key = (defn.name, defn.version)
    named = _PLANS_BY_NAME.get(key)
    if named is not None and named[0] == defn:
        plan = named[1]
    else:
        plan = Plan(defn)
        _PLANS_BY_NAME[key] = (defn, plan)
    if len(_PLANS) >= _PLAN_CACHE_MAX:
        _PLANS.clear()
    _PLANS[id(defn)] = (defn, plan)
    return plan


# --------------------------------------------------------------------------- the run


class Run:
    """The state of one decide() call; the handler modules act through its methods."""

    def __init__(self, wf: Workflow, env: ev.DeciderEnv, now: int) -> None:
        defn = wf.workflow_definition
        if defn is None or defn is UNSET:
            raise NotFound(f"workflow {wf.workflow_id} carries no workflowDefinition to decide with")
        self.wf = wf
        self.env = env
        self.now = now
        self.plan = plan_for(defn)  # type: ignore[arg-type]
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
        wt = t.workflow_task
        node = self.plan.nodes.get(wt.task_reference_name)  # type: ignore[union-attr]
        if node is None or node.wt is not wt:
            if node is not None and node.wt == wt:
                return node
            node = self.plan.node_for(wt, None)  # type: ignore[arg-type]
        return node

    def find_task(self, task_id: str) -> Task:
        return find_task(self.wf, task_id)

    def latest(self, ref: str) -> Task | None:
        """The latest row with this full reference name."""
        index = self.ref_index
        if index is None:
            index = {}
            for t in self.wf.tasks:
                index[t.reference_task_name] = t
            self.ref_index = index
        return index.get(ref)

    def cfg(self, node: Node) -> TaskCfg:
        return node_cfg(self, node)

    # -- mutations used by handlers
    def act(self, action: Any) -> None:
        self.actions.append(action)

    def new_task(self, node: Node, ref: str, task_type: str, status: TaskStatus, scope: Scope,
                 input_data: dict[str, Any]) -> Task:
        return new_task(self, node, ref, task_type, status, scope, input_data)

    def schedule(self, node: Node | None, scope: Scope) -> None:
        if node is not None:
            schedule(self, node, scope.suffix, scope.iteration, scope.loop_scope, None, 0)

    def schedule_next(self, t: Task, node: Node) -> None:
        schedule_next(self, t, node)

    def render(self, template: Any, task_id: str | None) -> Any:
        return render(self, template, task_id)

    def render_input(self, node: Node, task_id: str) -> dict[str, Any]:
        return render_input(self, node, task_id)

    def schedule_after(self, node: Node, scope: Scope) -> None:
        nxt = next_node(node)
        if nxt is not None:
            schedule(self, nxt, scope.suffix, scope.iteration, scope.loop_scope, None, 0)

    def schedule_join(self, node: Node, ref: str, scope: Scope, join_on: list[str]) -> Task:
        return schedule_join(self, node, ref, scope, join_on)

    def schedule_dynamic_worker(self, node: Node, ref: str, name: str, scope: Scope) -> None:
        schedule_dynamic_worker(self, node, ref, name, scope)

    def reschedule(self, node: Node, ref: str, scope: Scope) -> None:
        reschedule(self, node, ref, scope)

    def make_scope(self, suffix: str, iteration: int, loop_scope: str) -> Scope:
        return Scope(suffix, iteration, loop_scope, None, 0)

    def scope_of(self, t: Task, node: Node) -> Scope:
        return scope_of(t, node)

    def task_queue(self, t: Task) -> str:
        return task_queue(t)

    def touch(self) -> None:
        self.epoch += 1
        self.changed = True


class Scope:
    """Where a row sits: reference suffix (`__2`), loop iteration and loop scope key."""

    def __init__(self, suffix: str, iteration: int, loop_scope: str, prev: Task | None,
                 delay_s: int) -> None:
        self.suffix = suffix
        self.iteration = iteration
        self.loop_scope = loop_scope
        self.prev = prev  # the failed row this one retries, if any
        self.delay_s = delay_s


def node_cfg(run: Run, node: Node) -> TaskCfg:
    wt = node.wt
    td = wt.task_definition
    if td is None or td is UNSET:
        td = run.env.task_defs.get(node.name)
    if node.cfg_src is td and node.cfg is not None:
        return node.cfg
    src = td
    if td is None:
        td = DEFAULT_TASK_DEF if node.kind == K_WORKER else SYSTEM_TASK_DEF
    cfg = TaskCfg(node, td)  # type: ignore[arg-type]
    node.cfg = cfg
    node.cfg_src = src
    return cfg


def row_cfg(run: Run, t: Task, node: Node) -> TaskCfg:
    """The TaskCfg of a row: its node's, except DYNAMIC rows use the resolved TaskDef."""
    if node.kind != K_DYNAMIC:
        return node_cfg(run, node)
    name = t.task_def_name
    td = run.env.task_defs.get(name)
    hit = run.plan.dynamic_cfgs.get(name)
    if hit is not None and hit[0] is td:
        return hit[1]  # type: ignore[no-any-return]
    cfg = TaskCfg(node, td if td is not None else DEFAULT_TASK_DEF)
    run.plan.dynamic_cfgs[name] = (td, cfg)
    return cfg


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


def task_id_for(wf: Workflow, seq: int) -> str:
    return f"{wf.workflow_id[:24]}{(wf.restart_generation << 32) | seq:012x}"


# --------------------------------------------------------------------------- mapping


def workflow_ctx(wf: Workflow) -> dict[str, Any]:
    defn = wf.workflow_definition
    return {
        "input": wf.input,
        "output": wf.output,
        "status": wf.status.value,
        "workflowId": wf.workflow_id,
        "parentWorkflowId": _opt(wf.parent_workflow_id),
        "parentWorkflowTaskId": _opt(wf.parent_workflow_task_id),
        "workflowType": wf.workflow_name,
        "version": wf.workflow_version,
        "correlationId": _opt(wf.correlation_id),
        "reasonForIncompletion": _opt(wf.reason_for_incompletion),
        "schemaVersion": defn.schema_version if isinstance(defn, WorkflowDef) else 2,
        "variables": wf.variables,
    }


def task_ctx(t: Task) -> dict[str, Any]:
    return {
        "input": t.input_data,
        "output": t.output_data,
        "taskType": t.task_type,
        "status": t.status.value,
        "referenceTaskName": t.reference_task_name,
        "retryCount": t.retry_count,
        "correlationId": _opt(t.correlation_id),
        "pollCount": t.poll_count,
        "taskDefName": t.task_def_name,
        "scheduledTime": t.scheduled_time,
        "startTime": t.start_time,
        "endTime": t.end_time,
        "workflowInstanceId": t.workflow_instance_id,
        "taskId": t.task_id,
        "reasonForIncompletion": _opt(t.reason_for_incompletion),
        "callbackAfterSeconds": t.callback_after_seconds,
        "workerId": _opt(t.worker_id),
        "iteration": t.iteration,
    }


def _opt(value: Any) -> Any:
    return None if value is UNSET else value


def build_ctx(run: Run, template: Any, task_id: str | None) -> dict[str, Any]:
    """The mapping context with only the roots a template reads (latest row per ref)."""
    ctx: dict[str, Any] = {}
    if template.dynamic_roots:
        return full_ctx(run, task_id)
    tasks = run.wf.tasks
    for root in template.roots:
        if root == "workflow":
            ctx["workflow"] = workflow_ctx(run.wf)
        elif root == "CPEWF_TASK_ID":
            ctx["CPEWF_TASK_ID"] = task_id
        else:
            i = len(tasks) - 1
            while i >= 0:
                t = tasks[i]
                if t.reference_task_name == root or t.workflow_task.task_reference_name == root:  # type: ignore[union-attr]
                    ctx[root] = task_ctx(t)
                    break
                i -= 1
    return ctx


def full_ctx(run: Run, task_id: str | None) -> dict[str, Any]:
    """Every root: for templates whose roots are known only at render time."""
    ctx: dict[str, Any] = {"workflow": workflow_ctx(run.wf), "CPEWF_TASK_ID": task_id}
    for t in run.wf.tasks:
        entry = task_ctx(t)
        ctx[t.workflow_task.task_reference_name] = entry  # type: ignore[union-attr]
        ctx[t.reference_task_name] = entry
    return ctx


def render(run: Run, template: Any, task_id: str | None) -> Any:
    return template.render(build_ctx(run, template, task_id))


def render_input(run: Run, node: Node, task_id: str) -> dict[str, Any]:
    cfg = node_cfg(run, node)
    template = cfg.template
    out: dict[str, Any] = template.render(build_ctx(run, template, task_id))
    defaults = cfg.defaults
    if defaults:
        # TaskDef inputTemplate: a key that came out null takes the raw template value.
        for key, value in defaults.items():
            if out.get(key) is None:
                out[key] = value
    return out


# --------------------------------------------------------------------------- scheduling


def new_task(run: Run, node: Node, ref: str, task_type: str, status: TaskStatus, scope: Scope,
             input_data: dict[str, Any]) -> Task:
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
    run.touch()
    return t


def schedule(run: Run, node: Node, suffix: str, iteration: int, loop_scope: str,
             prev: Task | None, delay_s: int) -> None:
    """Create the row(s) for `node` in the given scope and start what must start now."""
    ref = node.ref + suffix if suffix else node.ref
    if prev is None:
        skipped = skipped_rows(run)
        if skipped:
            row = skipped.get(ref)
            if row is not None and not row.executed:
                # SkipTask left a SKIPPED row: hop over the task as if it had completed.
                row.executed = True
                run.touch()
                schedule_next(run, row, node)
                return
    kind = node.kind
    if kind == K_WORKER:
        schedule_worker(run, node, ref, suffix, iteration, loop_scope, prev, delay_s)
    elif kind == K_FORK:
        schedule_fork(run, node, ref, suffix, iteration, loop_scope)
    elif kind == K_JOIN:
        schedule_join(run, node, ref, Scope(suffix, iteration, loop_scope, None, 0), None)
    else:
        scope = Scope(suffix, iteration, loop_scope, prev, delay_s)
        if kind <= K_DO_WHILE or kind == K_DYNAMIC:
            flow_tasks.schedule(run, node, ref, scope)
        else:
            system_tasks.schedule(run, node, ref, scope)


def reschedule(run: Run, node: Node, ref: str, scope: Scope) -> None:
    """A new attempt of the failed row `scope.prev` (retries and the Retry operation)."""
    kind = node.kind
    if kind == K_WORKER:
        schedule_worker(run, node, ref, scope.suffix, scope.iteration, scope.loop_scope,
                        scope.prev, scope.delay_s)
    elif kind <= K_DO_WHILE or kind == K_DYNAMIC:
        flow_tasks.schedule(run, node, ref, scope)
    else:
        system_tasks.schedule(run, node, ref, scope)


def skipped_rows(run: Run) -> dict[str, Task]:
    skipped = run.skipped
    if skipped is None:
        skipped = {}
        for t in run.wf.tasks:
            if t.status is SKIPPED and not t.executed:
                skipped[t.reference_task_name] = t
        run.skipped = skipped
    return skipped


def schedule_worker(run: Run, node: Node, ref: str, suffix: str, iteration: int,
                    loop_scope: str, prev: Task | None, delay_s: int) -> None:
    task_type = node.name if node.type == "SIMPLE" else node.type
    worker_row(run, node, node_cfg(run, node), task_type, node.name, ref, iteration,
               loop_scope, prev, delay_s)


def schedule_dynamic_worker(run: Run, node: Node, ref: str, name: str, scope: Scope) -> None:
    """DYNAMIC: a worker row of the task type named by the input, with that TaskDef."""
    td = run.env.task_defs.get(name)
    hit = run.plan.dynamic_cfgs.get(name)
    if hit is not None and hit[0] is td:
        cfg = hit[1]
    else:
        cfg = TaskCfg(node, td if td is not None else DEFAULT_TASK_DEF)
        run.plan.dynamic_cfgs[name] = (td, cfg)
    worker_row(run, node, cfg, name, name, ref, scope.iteration, scope.loop_scope,
               scope.prev, scope.delay_s)


def worker_row(run: Run, node: Node, cfg: TaskCfg, task_type: str, def_name: str, ref: str,
               iteration: int, loop_scope: str, prev: Task | None, delay_s: int) -> None:
    """Append a SCHEDULED worker row and queue it (after startDelay or the retry delay)."""
    wf = run.wf
    tasks = wf.tasks
    seq = tasks[-1].seq + 1 if tasks else 1
    task_id = task_id_for(wf, seq)
    input_data = render_input(run, node, task_id)
    now = run.now
    domain = resolve_domain(run, def_name) if wf.task_to_domain else None
    delay = delay_s if prev is not None else node.start_delay
    t = Task(
        task_type=task_type,
        status=SCHEDULED,
        reference_task_name=ref,
        task_id=task_id,
        workflow_instance_id=wf.workflow_id,
        input_data=input_data,
        seq=seq,
        correlation_id=wf.correlation_id,
        task_def_name=def_name,
        scheduled_time=now,
        update_time=now,
        start_delay_in_seconds=delay,
        callback_after_seconds=delay,
        response_timeout_seconds=cfg.response_timeout_s,
        workflow_type=wf.workflow_name,
        workflow_task=node.wt,
        domain=domain,
        rate_limit_per_frequency=cfg.rate_limit,
        rate_limit_frequency_in_seconds=cfg.rate_freq,
        workflow_priority=wf.priority,
        execution_name_space=cfg.namespace,
        isolation_group_id=cfg.isolation_group,
        iteration=iteration,
        loop_over_task=iteration > 0,
        first_scheduled_time=now,
        loop_scope=loop_scope,
    )
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
    run.actions.append(
        ev.QueueTask(
            task_id=task_id,
            queue=queue_name(task_type, domain, cfg.namespace, cfg.isolation_group),
            priority=wf.priority,
            delay_ms=delay * 1000,
        )
    )


def queue_name(task_type: str, domain: str | None, namespace: str | None, group: str | None) -> str:
    """`[domain:]type[@namespace][-isolationGroup]`."""
    name = f"{domain}:{task_type}" if domain else task_type
    if namespace:
        name = f"{name}@{namespace}"
    if group:
        name = f"{name}-{group}"
    return name


def task_queue(t: Task) -> str:
    domain = t.domain if isinstance(t.domain, str) else None
    ns = t.execution_name_space if isinstance(t.execution_name_space, str) else None
    group = t.isolation_group_id if isinstance(t.isolation_group_id, str) else None
    return queue_name(t.task_type, domain, ns, group)


def resolve_domain(run: Run, task_name: str) -> str | None:
    """taskToDomain: the task's own entry, else "*"; the first active domain of a comma
    list wins, else the last entry (NO_DOMAIN = none)."""
    ttd = run.wf.task_to_domain
    value = ttd.get(task_name) or ttd.get("*")
    if not value:
        return None
    choices = [d.strip() for d in value.split(",") if d.strip()]
    if not choices:
        return None
    if len(choices) > 1:
        active = run.env.active_domains.get(task_name, frozenset())
        for d in choices[:-1]:
            if d in active:
                return None if d == "NO_DOMAIN" else d
    last = choices[-1]
    return None if last == "NO_DOMAIN" else last


def schedule_fork(run: Run, node: Node, ref: str, suffix: str, iteration: int, loop_scope: str) -> None:
    """FORK row (COMPLETED at once), the first task of every branch, then the JOIN."""
    scope = Scope(suffix, iteration, loop_scope, None, 0)
    fork = new_task(run, node, ref, "FORK", COMPLETED, scope, {})
    fork.task_def_name = "FORK"
    fork.end_time = run.now
    fork.executed = True
    join = node.next
    if join is None or join.kind != K_JOIN:
        ending.fail_workflow(run, WF_FAILED, "Fork task definition is not followed by a join task", None)
        return
    for first in node.branches:
        if first is not None:
            schedule(run, first, suffix, iteration, loop_scope, None, 0)
    schedule_join(run, join, join.ref + suffix, scope, None)


def schedule_join(run: Run, node: Node, ref: str, scope: Scope, join_on: list[str] | None) -> Task:
    if join_on is None:
        join_on = [r + scope.suffix for r in node.wt.join_on] if scope.suffix else list(node.wt.join_on)
    input_data = render(run, node.template, None) if node.wt.input_parameters else {}
    input_data["joinOn"] = join_on
    return new_task(run, node, ref, "JOIN", IN_PROGRESS, scope, input_data)


def scope_of(t: Task, node: Node) -> Scope:
    ref = t.reference_task_name
    suffix = ref[len(node.ref):] if len(ref) > len(node.ref) else ""
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


def schedule_next(run: Run, t: Task, node: Node) -> None:
    nxt = next_node(node)
    if nxt is not None:
        ref = t.reference_task_name
        suffix = ref[len(node.ref):] if len(ref) > len(node.ref) else ""
        schedule(run, nxt, suffix, t.iteration, t.loop_scope, None, 0)


# --------------------------------------------------------------------------- the loop


def run_loop(run: Run) -> None:
    """Settle every terminal row (retry it or schedule its successor) and re-evaluate
    JOIN / DO_WHILE rows, until a pass changes nothing; then check for completion."""
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
        progressed = False
        active = 0
        for j in range(i, n):
            t = tasks[j]
            if t.executed or t.retried:
                continue
            st = t.status
            if st is SKIPPED:
                continue
            if st is COMPLETED or st is COMPLETED_WITH_ERRORS:
                t.executed = True
                run.touch()
                progressed = True
                after_success(run, t, run.node_of(t))
            elif st is FAILED or st is FAILED_WITH_TERMINAL_ERROR or st is TIMED_OUT or st is CANCELED:
                progressed = True
                handle_failure(run, t, run.node_of(t))
            else:
                active += 1
                tt = t.task_type
                if tt == "JOIN" or tt == "DO_WHILE" or tt == "EXCLUSIVE_JOIN":
                    if evaluate_operator(run, t):
                        progressed = True
            if wf.status is not WF_RUNNING:
                return
        if not progressed:
            if active == 0:
                ending.complete_workflow(run)
            return


def after_success(run: Run, t: Task, node: Node) -> None:
    kind = node.kind
    if kind == K_WORKER or kind == K_JOIN:
        schedule_next(run, t, node)
    elif kind == K_FORK or kind == K_DYN_FORK:
        if t.task_type != "FORK":
            schedule_next(run, t, node)
    elif kind == K_SWITCH:
        if t.input_data.get("hasChildren") != "true":
            schedule_next(run, t, node)
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
        changed = flow_tasks.evaluate(run, t, run.node_of(t))
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
        row = run.latest(ref)
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
        elif st is not COMPLETED and st is not SKIPPED and not run.node_of(row).optional:
            reasons.append(_opt(row.reason_for_incompletion) or "")
            if st is not CANCELED:
                all_canceled = False
            if not run.node_of(row).permissive:
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
    run.touch()
    return True


# --------------------------------------------------------------------------- failures


def handle_failure(run: Run, t: Task, node: Node) -> None:
    """A terminal, unsuccessful row: retry it, or let the flow continue (optional /
    permissive), or end the workflow."""
    st = t.status
    cfg = row_cfg(run, t, node)
    now = run.now
    if (
        (st is FAILED or st is TIMED_OUT)
        and not node.never_retried
        and t.retry_count < cfg.retry_count
        and not (cfg.total_timeout_s > 0 and now - t.first_scheduled_time >= cfg.total_timeout_s * 1000)
    ):
        t.retried = True
        run.touch()
        if node.kind == K_WORKER:
            ref = t.reference_task_name
            worker_row(run, node, cfg, node.name if node.type == "SIMPLE" else node.type,
                       node.name, ref, t.iteration, t.loop_scope, t, retry_delay_s(cfg, t))
        else:
            scope = scope_of(t, node)
            scope.prev = t
            scope.delay_s = retry_delay_s(cfg, t)
            reschedule(run, node, t.reference_task_name, scope)
        return
    if node.optional:
        t.status = COMPLETED_WITH_ERRORS
        t.executed = True
        run.touch()
        schedule_next(run, t, node)
        return
    if node.permissive:
        t.executed = True
        run.touch()
        after_success(run, t, node)
        return
    wf_status = WF_TERMINATED if st is CANCELED else WF_TIMED_OUT if st is TIMED_OUT else WF_FAILED
    reason = (
        f"Task {t.task_id} failed with status: {wf_status.value} and reason: "
        f"'{_opt(t.reason_for_incompletion)}'"
    )
    t.executed = True
    ending.fail_workflow(run, wf_status, reason, t)


def retry_delay_s(cfg: TaskCfg, t: Task) -> int:
    """FIXED / LINEAR_BACKOFF / EXPONENTIAL_BACKOFF, capped by maxRetryDelaySeconds. The
    jitter is derived from the task id (deterministic) and rounded up to whole seconds."""
    n = t.retry_count
    base = cfg.retry_delay_s
    if cfg.retry_logic == 1:
        delay = base * cfg.backoff_scale * (n + 1)
    elif cfg.retry_logic == 2:
        delay = base * (1 << n) if n < 31 else INT32_MAX
    else:
        delay = base
    if delay > INT32_MAX or delay < 0:
        delay = INT32_MAX
    if cfg.max_retry_delay_s > 0 and delay > cfg.max_retry_delay_s:
        delay = cfg.max_retry_delay_s
    if cfg.jitter_ms > 0:
        jitter = zlib.crc32(t.task_id.encode()) % (cfg.jitter_ms + 1)
        delay += (jitter + 999) // 1000
    return int(delay)


# --------------------------------------------------------------------------- timers


def check_timeouts(run: Run) -> None:
    """Sweep: task timeouts (total, per attempt, poll, response) and due WAIT rows, then
    the timers system tasks keep (delayed retries of system tasks)."""
    wf = run.wf
    now = run.now
    tasks = wf.tasks
    for j in range(wf.scan_from, len(tasks)):
        t = tasks[j]
        st = t.status
        if t.executed or t.retried or not (st is SCHEDULED or st is IN_PROGRESS):
            continue
        node = run.node_of(t)
        if node.kind != K_WORKER and node.kind != K_DYNAMIC:
            system_tasks.on_sweep(run, t, node)
            continue
        cfg = row_cfg(run, t, node)
        reason = None
        policy = cfg.timeout_policy
        delay_ms = t.start_delay_in_seconds * 1000
        if cfg.total_timeout_s > 0 and now - t.first_scheduled_time >= cfg.total_timeout_s * 1000:
            reason = (
                f"Task total timeout of {cfg.total_timeout_s} seconds exceeded for task "
                f"{t.task_id}. Timeout policy configured to {policy.value}"
            )
        elif cfg.timeout_s > 0 and st is IN_PROGRESS and t.start_time > 0 and (
            now - (t.start_time + delay_ms) >= cfg.timeout_s * 1000
        ):
            elapsed = (now - t.start_time) // 1000
            reason = (
                f"Task timed out after {elapsed} seconds. Timeout configured as "
                f"{cfg.timeout_s} seconds. Timeout policy configured to {policy.value}"
            )
        elif cfg.poll_timeout_s > 0 and st is SCHEDULED and (
            now - (t.scheduled_time + delay_ms)
            >= (cfg.poll_timeout_s + t.callback_after_seconds) * 1000
        ):
            elapsed = (now - t.scheduled_time) // 1000
            reason = (
                f"Task poll timed out after {elapsed} seconds. Poll timeout configured as "
                f"{cfg.poll_timeout_s} seconds. Timeout policy configured to {policy.value}"
            )
        elif cfg.response_timeout_s > 0 and st is IN_PROGRESS and (
            now - t.update_time >= (cfg.response_timeout_s + t.callback_after_seconds) * 1000
        ):
            # The response timeout applies whatever the timeout policy says.
            t.reason_for_incompletion = (
                f"responseTimeout: {cfg.response_timeout_s} exceeded for the taskId: "
                f"{t.task_id} with Task Definition: {t.task_def_name}"
            )
            time_out_task(run, t)
            continue
        if reason is None or policy is P_ALERT_ONLY:
            continue
        t.reason_for_incompletion = reason
        time_out_task(run, t)
        if policy is P_TIME_OUT_WF:
            t.executed = True
            ending.fail_workflow(
                run, WF_TIMED_OUT,
                f"Task {t.task_id} failed with status: TIMED_OUT and reason: '{reason}'", t,
            )
            return


def time_out_task(run: Run, t: Task) -> None:
    if t.status is SCHEDULED:
        run.act(ev.DequeueTask(task_id=t.task_id, queue=task_queue(t)))
    t.status = TIMED_OUT
    t.end_time = run.now
    t.update_time = run.now
    run.touch()


def check_workflow_timeout(run: Run) -> None:
    wf = run.wf
    defn = run.plan.defn
    limit = defn.timeout_seconds
    if limit <= 0 or defn.timeout_policy.value != "TIME_OUT_WF":
        return
    base = wf.last_retried_time if wf.last_retried_time > 0 else wf.create_time
    elapsed = run.now - base
    if elapsed >= limit * 1000:
        ending.fail_workflow(
            run, WF_TIMED_OUT,
            f"Workflow timed out after {elapsed // 1000} seconds. Timeout configured as "
            f"{limit} seconds. Timeout policy configured to TIME_OUT_WF", None,
        )


def next_wake(run: Run) -> int:
    """The earliest future instant a Sweep has work: timeouts, WAIT ends, retry delays."""
    wf = run.wf
    if wf.status is not WF_RUNNING:
        return 0
    now = run.now
    best = 0
    defn = run.plan.defn
    if defn.timeout_seconds > 0 and defn.timeout_policy.value == "TIME_OUT_WF":
        base = wf.last_retried_time if wf.last_retried_time > 0 else wf.create_time
        best = base + defn.timeout_seconds * 1000
    tasks = wf.tasks
    for j in range(wf.scan_from, len(tasks)):
        t = tasks[j]
        st = t.status
        if t.executed or t.retried or not (st is SCHEDULED or st is IN_PROGRESS):
            continue
        node = run.node_of(t)
        if node.kind != K_WORKER and node.kind != K_DYNAMIC:
            when = system_tasks.wake_at(run, t, node)
            if when > now and (best == 0 or when < best):
                best = when
            continue
        cfg = row_cfg(run, t, node)
        delay_ms = t.start_delay_in_seconds * 1000
        if cfg.total_timeout_s > 0:
            best = _earlier(best, t.first_scheduled_time + cfg.total_timeout_s * 1000, now)
        if st is SCHEDULED:
            if t.callback_after_seconds > 0:
                best = _earlier(best, t.update_time + t.callback_after_seconds * 1000, now)
            if cfg.poll_timeout_s > 0:
                best = _earlier(
                    best,
                    t.scheduled_time + delay_ms + (cfg.poll_timeout_s + t.callback_after_seconds) * 1000,
                    now,
                )
        else:
            if cfg.timeout_s > 0 and t.start_time > 0:
                best = _earlier(best, t.start_time + delay_ms + cfg.timeout_s * 1000, now)
            if cfg.response_timeout_s > 0:
                best = _earlier(
                    best,
                    t.update_time + (cfg.response_timeout_s + t.callback_after_seconds) * 1000,
                    now,
                )
    return best


def _earlier(best: int, when: int, now: int) -> int:
    if when <= now:
        when = now + 1  # already due: the next sweep settles it
    return when if best == 0 or when < best else best


# --------------------------------------------------------------------------- events


def on_task_polled(run: Run, event: ev.TaskPolled) -> bool:
    t = find_task(run.wf, event.task_id)
    if t.status is not SCHEDULED or run.wf.status is not WF_RUNNING and run.wf.status is not WF_PAUSED:
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
    return False


def on_task_update(run: Run, event: ev.TaskUpdate) -> bool:
    """Apply a worker's TaskResult. True when the workflow must be decided."""
    wf = run.wf
    t = find_task(wf, event.task_id)
    now = run.now
    st = t.status
    if wf.status is not WF_RUNNING and wf.status is not WF_PAUSED or not (
        st is SCHEDULED or st is IN_PROGRESS
    ):
        return False  # updates to terminal tasks or workflows are ignored (Conductor: 200)
    if event.extend_lease:
        t.update_time = now
        run.changed = True
        return False
    node = run.node_of(t)
    rs = event.status
    t.output_data = event.output_data
    if event.reason_for_incompletion is not None:
        t.reason_for_incompletion = event.reason_for_incompletion[:500]
    if event.worker_id is not None:
        t.worker_id = event.worker_id
    if event.sub_workflow_id is not None:
        t.sub_workflow_id = event.sub_workflow_id
    t.update_time = now
    run.touch()
    if rs is R_IN_PROGRESS:
        t.callback_after_seconds = event.callback_after_seconds
        if node.kind == K_WORKER or node.kind == K_DYNAMIC:
            # The worker checks in again later: back to SCHEDULED, redelivered after the delay.
            t.status = SCHEDULED
            run.act(ev.QueueTask(task_id=t.task_id, queue=task_queue(t), priority=wf.priority,
                                 delay_ms=event.callback_after_seconds * 1000))
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
        run.act(ev.DequeueTask(task_id=t.task_id, queue=task_queue(t)))
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
        go = start_workflow(run)
    elif cls is ev.Sweep or cls is ev.DecideNow:
        go = workflow.status is WF_RUNNING
        if go:
            check_workflow_timeout(run)
            if workflow.status is WF_RUNNING:
                check_timeouts(run)
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
        check_workflow_timeout(run)
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


def start_workflow(run: Run) -> bool:
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
    schedule(run, first, "", 0, "", None, 0)
    return True
