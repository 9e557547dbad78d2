# cython: annotation_typing=False
"""Compiled plans of workflow definitions, task settings, and the mapping context.

Rules:
- Single source, compiled a second time as hotpath.plan_c (typed by plan_c.pxd); the
  decider's compiled twin cimports the node types for C-level attribute access.
- A WorkflowDef is compiled once into `Node` objects: kind code, neighbours (next
  sibling, parent, branch heads), the compiled input template and, per TaskDef object, a
  `TaskCfg` with the numbers retries and timeouts need. Plans are memoised by identity,
  then by (name, version) with an equality check.
- The mapping context holds only the roots a template names: `workflow`, task
  reference names (latest row, loop rows keyed without their `__N` suffix) and
  `CPEWF_TASK_ID`; a root whose expressions only read `input` / `output` gets an entry
  with just those keys (Template.root_io says which).
- Pure: no IO, no clock; everything here is a function of its arguments.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Mapping
from typing import Any

import cython

from core.enums import RetryLogic
from core.models import UNSET, Task, TaskDef, Workflow, WorkflowDef, WorkflowTask
from hotpath.plan_nodes import KIND_BY_TYPE, NEVER_RETRIED

# Each twin renders with the mapping twin of the same kind, so the pure-Python decider
# is measured (and tested) on pure Python throughout.
if cython.compiled:
    from hotpath.mapping_c import compile_template
else:
    from hotpath.mapping_py import Template, compile_template

K_WORKER = 0
K_SWITCH = 1
K_FORK = 2
K_DO_WHILE = 6
K_DYNAMIC = 9
INT32_MAX = 2147483647

# TaskDef used for a SIMPLE task without a registered definition (Conductor's defaults),
# and the ad-hoc one for system tasks (no retries, no response timeout).
DEFAULT_TASK_DEF = TaskDef(name="default")
SYSTEM_TASK_DEF = TaskDef(name="system", retry_count=0, response_timeout_seconds=0)
_NO_SRC = object()


class TaskCfg:
    """The numbers a task row needs from its TaskDef, read once per (node, TaskDef)."""

    def __init__(self, node: Node, td: TaskDef) -> None:
        self.retry_count = node.retry_override if node.retry_override >= 0 else td.retry_count
        logic = td.retry_logic
        self.retry_logic = (
            2
            if logic is RetryLogic.EXPONENTIAL_BACKOFF
            else 1
            if logic is RetryLogic.LINEAR_BACKOFF
            else 0
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

    def poll_deadline(self, t: Task) -> int:
        """When a SCHEDULED row of this TaskDef exceeds pollTimeoutSeconds."""
        return int(
            t.scheduled_time
            + t.start_delay_in_seconds * 1000
            + (self.poll_timeout_s + t.callback_after_seconds) * 1000
        )


class Node:
    """One WorkflowTask of a definition, with its neighbours resolved to references."""

    def __init__(self, wt: WorkflowTask, parent: Node | None, loop: Node | None) -> None:
        self.wt = wt
        # Interned, as the mapping engine interns template roots: rows made from this
        # node then match a template's root by identity.
        self.ref = sys.intern(wt.task_reference_name)
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
        # The decider's prototype worker row for this node (see decider_py.worker_row).
        self.proto: Task | None = None
        self.proto_cfg: TaskCfg | None = None
        # True for nodes compiled from tasks generated at run time (dynamic forks): the
        # same reference may stand for different tasks in different workflows.
        self.generated = False


class Plan:
    """A compiled WorkflowDef: nodes by reference name and the first node."""

    def __init__(self, defn: WorkflowDef) -> None:
        self.defn = defn
        self.defn_timeout_s = defn.timeout_seconds
        # timeoutSeconds when it times the workflow out (TIME_OUT_WF), else 0.
        self.timeout_s = (
            defn.timeout_seconds
            if defn.timeout_seconds > 0 and defn.timeout_policy._value_ == "TIME_OUT_WF"
            else 0
        )
        self.nodes: dict[str, Node] = {}
        self.first = self.compile_list(defn.tasks, None, None)
        self.output_template = (
            compile_template(defn.output_parameters) if defn.output_parameters else None
        )
        self.dynamic_cfgs: dict[str, tuple[TaskDef | None, TaskCfg]] = {}

    def compile_list(
        self, tasks: list[WorkflowTask], parent: Node | None, loop: Node | None
    ) -> Node | None:
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
                node.cases = {
                    k: self.compile_list(v, node, loop) for k, v in wt.decision_cases.items()
                }
                node.default = self.compile_list(wt.default_case, node, loop)
            elif node.kind == K_DO_WHILE:
                node.body = self.compile_list(wt.loop_over, node, node)
        return first

    def workflow_deadline(self, wf: Workflow) -> int:
        """When the workflow times out (timeoutSeconds with TIME_OUT_WF), 0 = never."""
        if self.timeout_s <= 0:
            return 0
        base = wf.last_retried_time if wf.last_retried_time > 0 else wf.create_time
        return int(base + self.timeout_s * 1000)

    def node_for(self, wt: WorkflowTask, parent: Node | None) -> Node:
        """The node of a task generated at run time (dynamic fork), compiled on first use."""
        node = self.nodes.get(wt.task_reference_name)
        if node is None or node.wt != wt:
            self.compile_list([wt], parent, parent.loop if parent is not None else None)
            node = self.nodes[wt.task_reference_name]
            node.generated = True
        return node


_PLANS: dict[int, tuple[WorkflowDef, Plan]] = {}
_PLANS_BY_NAME: dict[tuple[str, int], tuple[WorkflowDef, Plan]] = {}
_PLAN_CACHE_MAX = 2048


_LAST: list[Any] = [None, None]  # the last (definition, plan) returned


def plan_for(defn: WorkflowDef) -> Plan:
    """The compiled plan of a definition: by identity, else by equal (name, version)."""
    last = _LAST
    if last[0] is defn:
        return last[1]  # type: ignore[no-any-return]
    plan = _plan_for(defn)
    last[0] = defn
    last[1] = plan
    return plan


def _plan_for(defn: WorkflowDef) -> Plan:
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


def node_cfg(node: Node, task_defs: Mapping[str, TaskDef]) -> TaskCfg:
    """The TaskCfg of a node: its inline taskDefinition, else the registered TaskDef,
    else Conductor's defaults (SIMPLE) or the ad-hoc system-task ones; cached on the node
    for as long as the TaskDef object stays the same."""
    wt = node.wt
    td = wt.task_definition
    if td is None or td is UNSET:
        if type(task_defs) is dict:
            defs = task_defs  # typed `dict` in the pxd: a C-level lookup
            td = defs.get(node.name)
        else:
            td = task_defs.get(node.name)
    if node.cfg_src is td and node.cfg is not None:
        return node.cfg
    src = td
    if td is None:
        td = DEFAULT_TASK_DEF if node.kind == K_WORKER else SYSTEM_TASK_DEF
    cfg = TaskCfg(node, td)
    node.cfg = cfg
    node.cfg_src = src
    return cfg


def row_cfg(plan: Plan, t: Task, node: Node, task_defs: Mapping[str, TaskDef]) -> TaskCfg:
    """The TaskCfg of a row: its node's, except DYNAMIC rows use the resolved TaskDef."""
    if node.kind != K_DYNAMIC:
        return node_cfg(node, task_defs)
    return dynamic_cfg(plan, node, t.task_def_name, task_defs)


def dynamic_cfg(plan: Plan, node: Node, name: str, task_defs: Mapping[str, TaskDef]) -> TaskCfg:
    """The TaskCfg of the task type a DYNAMIC task resolved to (defaults if unregistered)."""
    td = task_defs.get(name)
    hit = plan.dynamic_cfgs.get(name)
    if hit is not None and hit[0] is td:
        return hit[1]
    cfg = TaskCfg(node, td if td is not None else DEFAULT_TASK_DEF)
    plan.dynamic_cfgs[name] = (td, cfg)
    return cfg


def workflow_ctx(wf: Workflow) -> dict[str, Any]:
    defn = wf.workflow_definition
    return {
        "input": wf.input,
        "output": wf.output,
        "status": wf.status._value_,  # not `.value`: a slow Python property
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
        "status": t.status._value_,
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


def build_ctx(wf: Workflow, template: Template, task_id: str | None) -> dict[str, Any]:
    """The mapping context with only the roots a template reads (latest row per ref),
    and of each root only the input/output entries when those are all it reads."""
    if template.dynamic_roots:
        return full_ctx(wf, task_id)
    ctx: dict[str, Any] = {}
    tasks = wf.tasks
    for root, io, kind in template.ctx_roots:
        if kind == 0:
            if io:
                ctx["workflow"] = _io_entry(io, wf.input, wf.output)
            else:
                ctx["workflow"] = workflow_ctx(wf)
        elif kind == 1:
            ctx["CPEWF_TASK_ID"] = task_id
        else:
            i = len(tasks) - 1
            while i >= 0:
                t = tasks[i]
                # Identity first: node references are interned like template roots.
                ref = t.reference_task_name
                if ref is not root and ref != root:
                    wt = t.workflow_task
                    ref = wt.task_reference_name  # type: ignore[union-attr]
                if ref is root or ref == root:
                    if io:
                        ctx[root] = _io_entry(io, t.input_data, t.output_data)
                    else:
                        ctx[root] = task_ctx(t)
                    break
                i -= 1
    return ctx


def _io_entry(io: int, input_data: Any, output_data: Any) -> dict[str, Any]:
    # A context entry with only the input/output keys a template reads (the renderer
    # looks nothing else up in it), instead of all of workflow_ctx / task_ctx.
    if io == 2:
        return {"output": output_data}
    if io == 1:
        return {"input": input_data}
    return {"input": input_data, "output": output_data}


def full_ctx(wf: Workflow, task_id: str | None) -> dict[str, Any]:
    """Every root: for templates whose roots are known only at render time."""
    ctx: dict[str, Any] = {"workflow": workflow_ctx(wf), "CPEWF_TASK_ID": task_id}
    for t in wf.tasks:
        entry = task_ctx(t)
        ctx[t.workflow_task.task_reference_name] = entry  # type: ignore[union-attr]
        ctx[t.reference_task_name] = entry
    return ctx


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


def resolve_domain(
    ttd: Mapping[str, str], active_domains: Mapping[str, frozenset[str]], task_name: str
) -> str | None:
    """taskToDomain: the task's own entry, else "*"; the first active domain of a comma
    list wins, else the last entry (NO_DOMAIN = none)."""
    value = ttd.get(task_name) or ttd.get("*")
    if not value:
        return None
    choices = [d.strip() for d in value.split(",") if d.strip()]
    if not choices:
        return None
    if len(choices) > 1:
        active = active_domains.get(task_name, frozenset())
        for d in choices[:-1]:
            if d in active:
                return None if d == "NO_DOMAIN" else d
    last = choices[-1]
    return None if last == "NO_DOMAIN" else last


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
