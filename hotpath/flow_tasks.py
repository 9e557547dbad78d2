"""Flow operators: SWITCH / DECISION, DO_WHILE, FORK_JOIN_DYNAMIC, EXCLUSIVE_JOIN, DYNAMIC.

Rules:
- Acts only through the decider's `run` (either twin); never imports the decider.
- A SWITCH row and the first task of its chosen branch are created together and the
  SWITCH completes at once (its successor comes when the branch ends).
- DO_WHILE body rows carry `loop_scope = "<loop task id>#<iteration>"` and the reference
  suffix `__<iteration>` (nested loops chain suffixes: `t__2__3`); the loop row itself
  holds the iteration counter and is re-evaluated when its body rows are settled.
- Generated tasks (dynamic forks) are compiled to plan nodes on first use.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import decisions as ev
from core.enums import TaskStatus, WorkflowStatus
from core.models import UNSET, SubWorkflowParams, Task, WorkflowTask
from hotpath import ending
from hotpath.mapping import compile_template, java_string
from hotpath.plan_nodes import K_DO_WHILE, K_DYN_FORK, K_DYNAMIC, K_EXCL_JOIN, K_JOIN, K_SWITCH

SCHEDULED = TaskStatus.SCHEDULED
IN_PROGRESS = TaskStatus.IN_PROGRESS
COMPLETED = TaskStatus.COMPLETED
FAILED = TaskStatus.FAILED
FWTE = TaskStatus.FAILED_WITH_TERMINAL_ERROR
SKIPPED = TaskStatus.SKIPPED
_SUCCESS = (TaskStatus.COMPLETED, TaskStatus.COMPLETED_WITH_ERRORS, TaskStatus.SKIPPED)
_ITEMS_TEMPLATES: dict[str, Any] = {}


def schedule(run: Any, node: Any, ref: str, scope: Any) -> None:
    kind = node.kind
    if kind == K_SWITCH:
        _switch(run, node, ref, scope)
    elif kind == K_DO_WHILE:
        _do_while(run, node, ref, scope)
    elif kind == K_DYN_FORK:
        _dynamic_fork(run, node, ref, scope)
    elif kind == K_EXCL_JOIN:
        _exclusive_join(run, node, ref, scope)
    elif kind == K_DYNAMIC:
        _dynamic(run, node, ref, scope)
    else:  # pragma: no cover - the decider dispatches only these kinds here
        raise AssertionError(f"no flow handler for {node.type}")


def evaluate(run: Any, t: Task, node: Any) -> bool:
    """Re-evaluate a waiting DO_WHILE or EXCLUSIVE_JOIN row; True if it changed."""
    if node.kind == K_DO_WHILE:
        return _evaluate_loop(run, t, node)
    return _evaluate_exclusive_join(run, t, node)


def finish(run: Any, t: Task, status: TaskStatus, reason: str | None = None) -> None:
    """End a system-task row now with `status` (and `reason`, when given)."""
    t.status = status
    if reason is not None:
        t.reason_for_incompletion = reason
    t.end_time = run.now
    t.update_time = run.now
    run.touch()


def request_script(run: Any, t: Task, language: str, script: str, bindings: Any) -> None:
    t.status = IN_PROGRESS
    t.script_pending = True
    run.touch()
    run.act(
        ev.EvaluateScript(task_id=t.task_id, language=language, script=script, bindings=bindings)
    )


def repeat_script_request(run: Any, t: Task, node: Any) -> None:
    """Re-issue the EvaluateScript a row waits for (repair after an engine crash)."""
    t.script_pending = False
    if node.kind == K_SWITCH:
        _switch_evaluate(run, t, node)
    elif node.kind == K_DO_WHILE:
        _loop_condition(run, t, node)
    else:
        from hotpath.system_tasks import start

        start(run, t, node)


# --------------------------------------------------------------------------- SWITCH


def _switch(run: Any, node: Any, ref: str, scope: Any) -> None:
    t = run.new_task(node, ref, node.type, IN_PROGRESS, scope, {})
    t.input_data = run.render_input(node, t.task_id)
    _switch_evaluate(run, t, node)


def _switch_evaluate(run: Any, t: Task, node: Any) -> None:
    wt = node.wt
    data = t.input_data
    if node.type == "DECISION":
        if isinstance(wt.case_value_param, str) and wt.case_value_param:
            choose_case(run, t, node, data.get(wt.case_value_param))
        elif isinstance(wt.case_expression, str) and wt.case_expression:
            request_script(run, t, "javascript", wt.case_expression, data)
        else:
            finish(run, t, FAILED, "DECISION task needs caseValueParam or caseExpression")
        return
    evaluator = wt.evaluator_type if isinstance(wt.evaluator_type, str) else "value-param"
    expression = wt.expression if isinstance(wt.expression, str) else ""
    if evaluator == "value-param":
        choose_case(run, t, node, data.get(expression))
    elif evaluator in ("javascript", "graaljs"):
        request_script(run, t, "javascript", expression, data)
    else:
        finish(run, t, FAILED, f"Unknown evaluator type '{evaluator}' for SWITCH task")


def on_switch_value(run: Any, t: Task, node: Any, value: Any, error: str | None) -> None:
    if error is not None:
        finish(run, t, FAILED, error)
        return
    choose_case(run, t, node, value)


def choose_case(run: Any, t: Task, node: Any, value: Any) -> None:
    case = java_string(value)
    if node.type == "DECISION":
        first = node.cases.get(case)
        if first is None:
            first = node.default  # DECISION: an empty or missing case list takes the default
        t.output_data = {"caseOutput": [case]}
    else:
        first = node.cases.get(case, node.default)
        t.output_data = {"evaluationResult": [case], "selectedCase": case}
    data = dict(t.input_data)
    data["case"] = case
    if first is not None:
        data["hasChildren"] = "true"
    t.input_data = data
    finish(run, t, COMPLETED)
    if first is not None:
        run.schedule(first, run.scope_of(t, node))


# --------------------------------------------------------------------------- DO_WHILE


def outer_scope(run: Any, t: Task, node: Any) -> Any:
    """The scope the loop row itself sits in (its own suffix, the outer iteration)."""
    ref = t.reference_task_name
    suffix = ref[len(node.ref) :]
    outer = int(t.loop_scope.rsplit("#", 1)[1]) if t.loop_scope else 0
    return run.make_scope(suffix, outer, t.loop_scope)


def _body_scope(run: Any, t: Task, node: Any, iteration: int) -> Any:
    suffix = t.reference_task_name[len(node.ref) :]
    return run.make_scope(f"{suffix}__{iteration}", iteration, f"{t.task_id}#{iteration}")


def _do_while(run: Any, node: Any, ref: str, scope: Any) -> None:
    t = run.new_task(node, ref, "DO_WHILE", IN_PROGRESS, scope, {})
    data = run.render_input(node, t.task_id)
    items = None
    wt = node.wt
    if isinstance(wt.items, str) and wt.items:
        template = _ITEMS_TEMPLATES.get(wt.items)
        if template is None:
            template = _ITEMS_TEMPLATES[wt.items] = compile_template(wt.items)
        items = run.render(template, t.task_id)
    elif "_items" in data:
        items = data["_items"]
    if items is not None:
        if not isinstance(items, list):
            t.input_data = data
            finish(run, t, FAILED, f"DO_WHILE 'items' did not resolve to a list: {items!r}")
            return
        data["items"] = items
    t.input_data = data
    if items is not None and not items:
        t.output_data = {"iteration": 0}
        finish(run, t, COMPLETED)
        return
    _start_iteration(run, t, node, 1)


def _start_iteration(run: Any, t: Task, node: Any, iteration: int) -> None:
    t.iteration = iteration
    output = dict(t.output_data)
    output["iteration"] = iteration
    items = t.input_data.get("items")
    if isinstance(items, list):
        output["loopIndex"] = iteration - 1
        output["loopItem"] = items[iteration - 1]
    t.output_data = output
    t.update_time = run.now
    run.touch()
    keep = t.input_data.get("keepLastN")
    if isinstance(keep, int) and not isinstance(keep, bool) and 0 < keep < iteration:
        # Pruned after the settle loop, which must not see rows vanish under it.
        if run.prunes is None:
            run.prunes = []
        run.prunes.append(t)
    if node.body is None:
        finish(run, t, COMPLETED)
        return
    run.schedule(node.body, _body_scope(run, t, node, iteration))


def prune_loops(run: Any) -> None:
    """keepLastN: drop the output keys and the rows (nested loops' rows included) of
    every iteration older than the last N, for each loop that asked."""
    wf = run.wf
    doomed: set[str] = set()
    for t in run.prunes:
        cutoff = t.iteration - t.input_data["keepLastN"]
        output = dict(t.output_data)
        for k in range(1, cutoff + 1):
            output.pop(str(k), None)
        t.output_data = output
        prefix = f"{t.task_id}#"
        for r in wf.tasks:
            scope = r.loop_scope
            if scope.startswith(prefix) and int(scope[len(prefix) :]) <= cutoff:
                doomed.add(r.task_id)
    run.prunes = None
    if not doomed:
        return
    kept = []
    for r in wf.tasks:  # rows follow their loop row, so one pass catches nested loops
        owner = r.loop_scope.rpartition("#")[0]
        if r.task_id in doomed or (owner and owner in doomed):
            doomed.add(r.task_id)
            run.removed.append(r.task_id)
        else:
            kept.append(r)
    wf.tasks = kept
    wf.scan_from = 0  # positions moved; the next decision rescans once
    run.ref_index = None
    run.skipped = None
    run.touch()


def _body_rows(run: Any, t: Task) -> list[Task]:
    key = f"{t.task_id}#{t.iteration}"
    return [r for r in run.wf.tasks if r.loop_scope == key and not r.retried]


def _evaluate_loop(run: Any, t: Task, node: Any) -> bool:
    if t.script_pending:
        return False
    rows = _body_rows(run, t)
    reasons = []
    outputs: dict[str, Any] = {}
    for r in rows:
        st = r.status
        if st is SKIPPED:
            continue
        if st is SCHEDULED or st is IN_PROGRESS or not r.executed:
            return False
        if st not in _SUCCESS:
            reasons.append(
                r.reason_for_incompletion if isinstance(r.reason_for_incompletion, str) else ""
            )
        outputs[run.node_of(r).ref] = r.output_data
    output = dict(t.output_data)
    output[str(t.iteration)] = outputs
    t.output_data = output
    if reasons:
        finish(run, t, FAILED, " ".join(reasons))
        return True
    items = t.input_data.get("items")
    more_items = isinstance(items, list) and t.iteration < len(items)
    condition = node.wt.loop_condition
    has_condition = isinstance(condition, str) and bool(condition.strip())
    if isinstance(items, list) and not more_items:
        finish(run, t, COMPLETED)
    elif has_condition:
        _loop_condition(run, t, node)
    elif more_items:
        _start_iteration(run, t, node, t.iteration + 1)
    else:
        finish(run, t, COMPLETED)
    return True


def _loop_condition(run: Any, t: Task, node: Any) -> None:
    bindings = run.render(node.template, t.task_id)
    if not isinstance(bindings, dict):
        bindings = {}
    bindings[node.ref] = t.output_data
    for r in _body_rows(run, t):
        bindings[run.node_of(r).ref] = r.output_data
    request_script(run, t, "javascript", node.wt.loop_condition, bindings)


def truthy(value: Any) -> bool:
    """Conductor's boolean reading of a script result: a Boolean, or a Number > 0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value > 0
    return False


def on_loop_condition(run: Any, t: Task, node: Any, value: Any, error: str | None) -> None:
    if error is not None:
        finish(run, t, FWTE, error)
    elif truthy(value):
        _start_iteration(run, t, node, t.iteration + 1)
    else:
        finish(run, t, COMPLETED)


# --------------------------------------------------------------------------- joins, dynamic


def _exclusive_join(run: Any, node: Any, ref: str, scope: Any) -> None:
    t = run.new_task(node, ref, "EXCLUSIVE_JOIN", IN_PROGRESS, scope, {})
    data = run.render_input(node, t.task_id)
    sfx = scope.suffix
    data["joinOn"] = [r + sfx for r in node.wt.join_on]
    data["defaultExclusiveJoinTask"] = [r + sfx for r in node.wt.default_exclusive_join_task]
    t.input_data = data


def _evaluate_exclusive_join(run: Any, t: Task, node: Any) -> bool:
    found = None
    for ref in t.input_data.get("joinOn") or []:
        r = run.latest(ref)
        if r is not None and r.status is not SKIPPED:
            found = r
            break
    if found is None:
        for ref in t.input_data.get("defaultExclusiveJoinTask") or []:
            r = run.latest(ref)
            if r is not None:
                found = r
                break
    if found is None:
        finish(run, t, COMPLETED)
        return True
    st = found.status
    if st is SCHEDULED or st is IN_PROGRESS or not found.executed:
        return False
    t.output_data = dict(found.output_data)
    if st in _SUCCESS:
        finish(run, t, COMPLETED)
    else:
        finish(
            run,
            t,
            FAILED,
            found.reason_for_incompletion if isinstance(found.reason_for_incompletion, str) else "",
        )
    return True


def _dynamic(run: Any, node: Any, ref: str, scope: Any) -> None:
    wt = node.wt
    data = run.render(node.template, None)
    param = wt.dynamic_task_name_param if isinstance(wt.dynamic_task_name_param, str) else ""
    name = data.get(param) if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        ending.fail_workflow(
            run,
            WorkflowStatus.FAILED,
            f"Cannot map a dynamic task based on the parameter and input. Parameter= {param}, "
            f"input= {data}",
            None,
        )
        return
    run.schedule_dynamic_worker(node, ref, name, scope)


def _dynamic_fork(run: Any, node: Any, ref: str, scope: Any) -> None:
    data = run.render(node.template, None)
    if not isinstance(data, dict):
        data = {}
    try:
        generated = _generated_tasks(run, node, data)
    except ValueError as exc:
        ending.fail_workflow(run, WorkflowStatus.FAILED, str(exc), None)
        return
    join = node.next
    if join is None or join.kind != K_JOIN:
        ending.fail_workflow(
            run,
            WorkflowStatus.FAILED,
            "Dynamic fork task definition is not followed by a join task",
            None,
        )
        return
    refs = [wt.task_reference_name for wt in generated]
    if len(set(refs)) != len(refs):
        ending.fail_workflow(
            run, WorkflowStatus.FAILED, f"Duplicate task references in dynamic fork: {refs}", None
        )
        return
    fork_input = {
        "forkedTasks": refs,
        "forkedTaskDefs": [msgspec.to_builtins(wt) for wt in generated],
    }
    fork = run.new_task(node, ref, "FORK", COMPLETED, scope, fork_input)
    fork.task_def_name = "FORK"
    fork.end_time = run.now
    fork.executed = True
    for wt in generated:
        run.schedule(run.plan.node_for(wt, node), scope)
    run.schedule_join(join, join.ref + scope.suffix, scope, [r + scope.suffix for r in refs])


def _generated_tasks(run: Any, node: Any, data: dict[str, Any]) -> list[WorkflowTask]:
    wt = node.wt
    optional = wt.optional
    if isinstance(wt.dynamic_fork_tasks_param, str) and wt.dynamic_fork_tasks_param:
        tasks = data.get(wt.dynamic_fork_tasks_param)
        inputs_name = wt.dynamic_fork_tasks_input_param_name
        inputs = data.get(inputs_name) if isinstance(inputs_name, str) else {}
        if tasks is None:
            tasks = []
        if not isinstance(tasks, list):
            raise ValueError(
                f"Input '{wt.dynamic_fork_tasks_param}' of a dynamic fork must be a list of tasks"
            )
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict):
            raise ValueError(
                f"Input '{inputs_name}' of a dynamic fork must be a map of task inputs"
            )
        out = []
        for item in tasks:
            raw = msgspec.to_builtins(item) if isinstance(item, WorkflowTask) else item
            if not isinstance(raw, dict) or not raw.get("taskReferenceName"):
                raise ValueError("A dynamically forked task has no taskReferenceName")
            raw = dict(raw)
            raw.setdefault("name", raw["taskReferenceName"])
            params = dict(raw.get("inputParameters") or {})
            extra = inputs.get(raw["taskReferenceName"])
            if isinstance(extra, dict):
                params.update(extra)
            raw["inputParameters"] = params
            out.append(msgspec.convert(raw, WorkflowTask))
        return out
    if isinstance(wt.dynamic_fork_join_tasks_param, str) and wt.dynamic_fork_join_tasks_param:
        holder = data.get(wt.dynamic_fork_join_tasks_param)
        items = holder.get("dynamicTasks") if isinstance(holder, dict) else None
        out = []
        for item in items or []:
            sub = item.get("workflowName")
            out.append(
                WorkflowTask(
                    name=item.get("taskName") or sub or "",
                    task_reference_name=item.get("referenceName") or "",
                    type=item.get("type") or ("SUB_WORKFLOW" if sub else "SIMPLE"),
                    input_parameters=dict(item.get("input") or {}),
                    sub_workflow_param=SubWorkflowParams(name=sub) if sub else UNSET,
                )
            )
        if any(not w.task_reference_name for w in out):
            raise ValueError("A dynamically forked task has no referenceName")
        return out
    inputs = data.get("forkTaskInputs")
    if not isinstance(inputs, list):
        inputs = []
    sub_name = data.get("forkTaskWorkflow")
    if isinstance(sub_name, str) and sub_name:
        version = data.get("forkTaskWorkflowVersion")
        try:
            version_int = int(version) if version not in (None, "") else None
        except (TypeError, ValueError):
            raise ValueError(f"forkTaskWorkflowVersion {version!r} is not a number") from None
        sub_params = SubWorkflowParams(name=sub_name, version=version_int)
        return [
            WorkflowTask(
                name=sub_name,
                task_reference_name=f"_{sub_name}_{i}",
                type="SUB_WORKFLOW",
                input_parameters=_fork_input(item, i),
                sub_workflow_param=sub_params,
                optional=optional,
            )
            for i, item in enumerate(inputs)
        ]
    task_type = data.get("forkTaskType") or "SIMPLE"
    default_name = node.ref if task_type == "SIMPLE" else task_type
    task_name = data.get("forkTaskName") or default_name
    prefix = f"_{task_name}_"
    if run.latest(f"{prefix}0") is not None:
        prefix = f"_{node.ref}_{task_name}_"  # another dynamic fork already used the plain names
    return [
        WorkflowTask(
            name=task_name,
            task_reference_name=f"{prefix}{i}",
            type=task_type,
            input_parameters=_fork_input(item, i),
            optional=optional,
        )
        for i, item in enumerate(inputs)
    ]


def _fork_input(item: Any, index: int) -> dict[str, Any]:
    params = dict(item) if isinstance(item, dict) else {"input": item}
    params["__index"] = index
    return params
