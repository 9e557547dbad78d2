# cython: annotation_typing=False
"""The decider's working rows: the per-decision `Run`, row lookups, row creation,
mapping of task inputs, and the timers that say when a Sweep is due.

Rules:
- Single source, compiled a second time as hotpath.rows_c (typed by rows_c.pxd); the
  decider twin cimports `Run`, `Scope` and the helpers so it calls them at C level.
- Rows are never removed here; ids are `first 24 chars of the workflow id + 12 hex
  digits of (restart generation << 32 | seq)`, so a row is found by id in O(1).
- A new worker row is a copy of its node's prototype row plus the per-row fields: much
  cheaper than a Task built from ~30 keyword arguments.
- Every row that can time out carries `timerAt` (armed when it is created or changes
  state); `next_wake` is the minimum over active rows, so it costs O(active rows).
- Pure: no IO, no clock, no randomness.
"""

from __future__ import annotations

from typing import Any

import cython

from core import decisions as ev
from core.enums import TaskStatus, TimeoutPolicy, WorkflowStatus
from core.errors import NotFound
from core.models import UNSET, Task, Workflow
from hotpath import system_tasks

if not cython.compiled:
    from hotpath.plan_py import (
        Node,
        Plan,
        TaskCfg,
        build_ctx,
        node_cfg,
        plan_for,
        queue_name,
        resolve_domain,
        row_cfg,
        task_queue,
    )
else:
    # The compiled twins read and write msgspec records as C structs (hotpath/structs.pxd):
    # prove the layout they assume before any of their code runs.
    from hotpath import struct_layout

    struct_layout.verify()

K_WORKER = 0
K_DYNAMIC = 9
SCHEDULED = TaskStatus.SCHEDULED
IN_PROGRESS = TaskStatus.IN_PROGRESS
WF_RUNNING = WorkflowStatus.RUNNING
P_ALERT_ONLY = TimeoutPolicy.ALERT_ONLY
QUEUE_TASK = ev.QueueTask
# msgspec's Task.__copy__, looked up once: a direct call, no method lookup per row.
COPY_TASK = Task.__copy__  # type: ignore[attr-defined]


class Run:
    """The state of one decide() call; the handler modules act through its methods."""

    wf: Workflow
    env: ev.DeciderEnv
    now: int
    plan: Plan
    actions: list[Any]
    added: list[str]
    removed: list[str]
    changed: bool
    ref_index: dict[str, Task] | None
    skipped: dict[str, Task] | None
    epoch: int
    eval_epochs: dict[str, int] | None
    # DO_WHILE rows whose keepLastN pruning is due once the settle loop is done.
    prunes: list[Task] | None

    def __init__(self, wf: Workflow, env: ev.DeciderEnv, now: int) -> None:
        start_run(self, wf, env, now)

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

    def render(self, template: Any, task_id: str | None) -> Any:
        return render_template(self, template, task_id)

    def render_input(self, node: Node, task_id: str) -> dict[str, Any]:
        return render_task_input(self, node, task_id)

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


def start_run(run: Run, wf: Workflow, env: ev.DeciderEnv, now: int) -> None:
    """Set up a new Run (the compiled decider allocates it without the __init__ call)."""
    defn = wf.workflow_definition
    if defn is None or defn is UNSET:
        raise NotFound(f"workflow {wf.workflow_id} carries no workflowDefinition to decide with")
    run.wf = wf
    run.env = env
    run.now = now
    run.plan = plan_for(defn)
    run.actions = []
    run.added = []
    run.removed = []
    run.changed = False
    run.ref_index = None
    run.skipped = None
    run.epoch = 0
    run.eval_epochs = None
    run.prunes = None


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
    if node is not None and (node.wt is wt or not node.generated):
        # A definition's own node: the plan was found for an equal definition, so the
        # reference alone identifies it (rows reloaded from a store hold equal copies).
        return node
    if node is None or node.wt != wt:
        node = run.plan.node_for(wt, None)  # type: ignore[arg-type]
    return node


def latest_row(run: Run, ref: str) -> Task | None:
    """The latest row with this full reference name."""
    index = run.ref_index
    if index is None:
        index = ref_index(run.wf.tasks)
        run.ref_index = index
    return index.get(ref)


class RefIndex:
    """Reference name -> latest row of one task list, covering its first `size` rows."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = tasks
        self.size = 0
        self.rows: dict[str, Task] = {}


# Task lists are only ever appended to in place (every removal assigns a new list), so
# the index of a list seen before is brought up to date by indexing its new rows: a
# JOIN over many branches then costs a few lookups per decision, not a rebuild. The
# entries hold their lists, so an id is not reused while cached; bounded, then cleared.
_REF_INDEXES: dict[int, RefIndex] = {}
_REF_INDEX_MAX = 256


def ref_index(tasks: list[Task]) -> dict[str, Task]:
    """The up-to-date reference index of a task list (shared: callers add their rows)."""
    entry = _REF_INDEXES.get(id(tasks))
    if entry is None or entry.tasks is not tasks or entry.size > len(tasks):
        if len(_REF_INDEXES) >= _REF_INDEX_MAX:
            _REF_INDEXES.clear()
        entry = RefIndex(tasks)
        _REF_INDEXES[id(tasks)] = entry
    rows = entry.rows
    n = len(tasks)
    for j in range(entry.size, n):
        t = tasks[j]
        rows[t.reference_task_name] = t
    entry.size = n
    return rows


def find_task(wf: Workflow, task_id: str) -> Task:
    """A row by id: O(1) through the sequence number the id ends with, else a scan."""
    tasks = wf.tasks
    seq = _seq_of(task_id)
    if 0 < seq <= len(tasks):
        t = tasks[seq - 1]
        if t.task_id == task_id:
            return t
    for t in tasks:
        if t.task_id == task_id:
            return t
    raise NotFound(f"No such task found by id: {task_id} in workflow {wf.workflow_id}")


def _seq_of(task_id: str) -> int:
    """The sequence number in the last 8 hex digits of a task id (0 if none); a wrong
    guess only costs find_task a scan, which checks the id."""
    if cython.compiled:
        # A C loop over the characters: no slice, no int() parse.
        n = len(task_id)
        if n < 8:
            return 0
        seq = 0
        for k in range(n - 8, n):
            ch = task_id[k]
            if "0" <= ch <= "9":
                seq = seq * 16 + (ord(ch) - 48)
            elif "a" <= ch <= "f":
                seq = seq * 16 + (ord(ch) - 87)
            elif "A" <= ch <= "F":
                seq = seq * 16 + (ord(ch) - 55)
            else:
                return 0
        return seq
    try:
        return int(task_id[-8:], 16)
    except ValueError:
        return 0


def _opt(value: Any) -> Any:
    return None if value is UNSET else value


# The 12-hex-digit id suffixes of the first rows of a first run, formatted once.
_SUFFIXES = tuple([f"{seq:012x}" for seq in range(1024)])


def next_seq(tasks: list[Task]) -> int:
    if not tasks:
        return 1
    last = tasks[len(tasks) - 1]
    return last.seq + 1


def task_id_for(wf: Workflow, seq: int) -> str:
    if wf.restart_generation == 0 and 0 <= seq < 1024:
        workflow_id = wf.workflow_id
        suffix = _SUFFIXES[seq]
        return workflow_id[:24] + suffix
    return f"{wf.workflow_id[:24]}{(wf.restart_generation << 32) | seq:012x}"


def row_scope(t: Task, node: Node) -> Scope:
    ref = t.reference_task_name
    suffix = ref[len(node.ref) :] if len(ref) > len(node.ref) else ""
    return Scope(suffix, t.iteration, t.loop_scope, None, 0)


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
    seq = next_seq(tasks)
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
    seq = next_seq(tasks)
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
    t = COPY_TASK(proto)
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
    # `cfg` is this row's row_cfg (its node's, or the resolved DYNAMIC one): arm_timer
    # without looking it up again.
    t.timer_at = worker_timer(t, cfg)
    run.actions.append(
        QUEUE_TASK(
            task_id=task_id,
            queue=queue_name(task_type, domain, cfg.namespace, cfg.isolation_group),
            priority=wf.priority,
            delay_ms=delay * 1000,
        )
    )


def arm_timer(run: Run, t: Task, node: Node) -> None:
    """Set `t.timer_at`: the earliest instant a Sweep has work for this row (0 = none).
    Called whenever a row is created or changes state; check_timeouts uses the same
    thresholds, so a Sweep at `timer_at` always settles what armed it."""
    kind = node.kind
    if kind == K_WORKER or kind == K_DYNAMIC:  # noqa: SIM109 (C int compares when compiled)
        t.timer_at = worker_timer(t, row_cfg(run.plan, t, node, run.env.task_defs))
    else:
        t.timer_at = system_tasks.wake_at(run, t, node)


def worker_timer(t: Task, cfg: TaskCfg) -> int:
    """arm_timer's instant for a worker (or DYNAMIC) row whose row_cfg is `cfg`."""
    st = t.status
    at = 0
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
    return at


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
        if at == 0:
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
