"""System tasks the server runs itself: WAIT, HUMAN, TERMINATE, SET_VARIABLE, NOOP,
INLINE / LAMBDA / JSON_JQ_TRANSFORM, EVENT, HTTP / START_WORKFLOW / KAFKA_PUBLISH and
SUB_WORKFLOW, and the events that answer them (ScriptResult, SystemTaskResult,
ChildWorkflowUpdate).

Rules:
- Acts only through the decider's `run` (either twin); never imports the decider.
- Scripts are not run here: a row waiting for one is IN_PROGRESS with `script_pending`
  and an EvaluateScript action; the engine answers with a ScriptResult.
- A system-task retry with a delay waits SCHEDULED until a Sweep finds it due.
- Time zone: WAIT `until` values without a zone are read as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from core import decisions as ev
from core.enums import TaskStatus, WorkflowStatus
from core.models import UNSET, Task, WorkflowDef
from hotpath import ending, flow_tasks
from hotpath.flow_tasks import finish
from hotpath.mapping import compile_template
from hotpath.plan_nodes import (
    K_ASYNC_SYSTEM,
    K_DO_WHILE,
    K_DYNAMIC,
    K_EVENT,
    K_HUMAN,
    K_NOOP,
    K_SCRIPT,
    K_SET_VARIABLE,
    K_SUB_WORKFLOW,
    K_SWITCH,
    K_TERMINATE,
    K_WAIT,
    K_WORKER,
)

SCHEDULED = TaskStatus.SCHEDULED
IN_PROGRESS = TaskStatus.IN_PROGRESS
COMPLETED = TaskStatus.COMPLETED
FAILED = TaskStatus.FAILED
FWTE = TaskStatus.FAILED_WITH_TERMINAL_ERROR
CANCELED = TaskStatus.CANCELED
MAX_VARIABLES_BYTES = 256 * 1024
_TERMINAL_WF = {
    "COMPLETED": WorkflowStatus.COMPLETED,
    "FAILED": WorkflowStatus.FAILED,
    "TERMINATED": WorkflowStatus.TERMINATED,
}
_CHILD_TO_TASK = {
    WorkflowStatus.COMPLETED: COMPLETED,
    WorkflowStatus.FAILED: FAILED,
    WorkflowStatus.TERMINATED: CANCELED,
    WorkflowStatus.TIMED_OUT: TaskStatus.TIMED_OUT,
}
_DURATION = re.compile(
    r"^\s*(?:(\d+)\s*(?:days?|d))?\s*(?:(\d+)\s*(?:hours?|hrs?|h))?\s*"
    r"(?:(\d+)\s*(?:minutes?|mins?|m))?\s*(?:(\d+)\s*(?:seconds?|secs?|s))?\s*$",
    re.IGNORECASE,
)
_UNTIL_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d")


def schedule(run: Any, node: Any, ref: str, scope: Any) -> None:
    """Create and start the row of a system task."""
    kind = node.kind
    delayed = scope.prev is not None and scope.delay_s > 0
    first_status = SCHEDULED if (delayed or kind == K_ASYNC_SYSTEM) else IN_PROGRESS
    t = run.new_task(node, ref, node.type, first_status, scope, {})
    if not delayed:
        start(run, t, node)
    run.arm(t)  # a delayed retry waits for a Sweep; a WAIT for its deadline


def start(run: Any, t: Task, node: Any) -> None:
    kind = node.kind
    t.input_data = run.render_input(node, t.task_id)
    if kind == K_ASYNC_SYSTEM:
        t.status = SCHEDULED
        run.act(
            ev.RunSystemTask(task_id=t.task_id, task_type=t.task_type, input=_system_input(run, t))
        )
    elif kind == K_NOOP:
        finish(run, t, COMPLETED)
    elif kind == K_SET_VARIABLE:
        _set_variable(run, t)
    elif kind == K_TERMINATE:
        _terminate(run, t)
    elif kind == K_WAIT:
        _wait(run, t)
    elif kind == K_HUMAN:
        t.status = IN_PROGRESS
    elif kind == K_SCRIPT:
        _script(run, t)
    elif kind == K_EVENT:
        _event(run, t, node)
    elif kind == K_SUB_WORKFLOW:
        _sub_workflow(run, t, node)
    else:  # pragma: no cover - every kind is dispatched above or in the decider
        raise AssertionError(f"no system-task handler for {t.task_type}")


def _system_input(run: Any, t: Task) -> dict[str, Any]:
    data = t.input_data
    if t.task_type == "START_WORKFLOW":
        # The started workflow inherits the parent's correlation id and domains by default.
        request = data.get("startWorkflow")
        if isinstance(request, dict):
            request = dict(request)
            wf = run.wf
            if not request.get("correlationId") and isinstance(wf.correlation_id, str):
                request["correlationId"] = wf.correlation_id
            if not request.get("taskToDomain") and wf.task_to_domain:
                request["taskToDomain"] = dict(wf.task_to_domain)
            data = dict(data)
            data["startWorkflow"] = request
    return data


def _set_variable(run: Any, t: Task) -> None:
    wf = run.wf
    merged = dict(wf.variables)
    merged.update(t.input_data)
    if len(msgspec.json.encode(merged)) > MAX_VARIABLES_BYTES:
        finish(
            run,
            t,
            FWTE,
            f"The variables payload size exceeds the limit of {MAX_VARIABLES_BYTES} bytes",
        )
        return
    wf.variables = merged
    finish(run, t, COMPLETED)


def _terminate(run: Any, t: Task) -> None:
    data = t.input_data
    status_name = data.get("terminationStatus")
    wf_status = _TERMINAL_WF.get(status_name) if isinstance(status_name, str) else None
    if wf_status is None:
        finish(run, t, FAILED, f"given termination status is not valid: {status_name!r}")
        return
    output = data.get("workflowOutput")
    t.output_data = output if isinstance(output, dict) else {"output": output}
    finish(run, t, COMPLETED)
    t.executed = True
    reason = data.get("terminationReason") or (
        f"Workflow is {wf_status.value} by TERMINATE task: {t.task_id}"
    )
    wf = run.wf
    if wf_status is WorkflowStatus.COMPLETED:
        wf.status = WorkflowStatus.COMPLETED
        wf.end_time = run.now
        if data.get("terminationReason"):
            wf.reason_for_incompletion = reason
        ending.cancel_active_tasks(run, wf_status)
        wf.output = dict(t.output_data)
        ending.notify_parent(run)
        run.touch()
    else:
        ending.fail_workflow(run, wf_status, reason, t, output=dict(t.output_data))


def parse_duration_ms(text: str) -> int | None:
    """`"1d 2h 3m 4s"`, `"30 seconds"`, `"5 mins"` -> milliseconds; None if unreadable."""
    m = _DURATION.match(text)
    if m is None or not any(m.groups()):
        return None
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return (((d * 24 + h) * 60 + mi) * 60 + s) * 1000


def parse_until_ms(text: str) -> int | None:
    """`yyyy-MM-dd HH:mm[ zone]` or `yyyy-MM-dd`; without a zone the time is UTC."""
    text = text.strip()
    for fmt in _UNTIL_FORMATS:
        try:
            return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            pass
    head, _, zone = text.rpartition(" ")
    if head and zone:
        try:
            from zoneinfo import ZoneInfo

            tz = ZoneInfo("UTC" if zone.upper() in ("UTC", "GMT", "Z") else zone)
            when = datetime.strptime(head, "%Y-%m-%d %H:%M").replace(tzinfo=tz)
            return int(when.timestamp() * 1000)
        except (ValueError, KeyError, OSError):
            return None
    return None


def _wait(run: Any, t: Task) -> None:
    data = t.input_data
    duration = data.get("duration")
    until = data.get("until")
    t.status = IN_PROGRESS
    if duration and until:
        finish(run, t, FWTE, "Both 'duration' and 'until' specified. Please provide only one input")
        return
    if duration:
        ms = parse_duration_ms(str(duration))
        if ms is None:
            finish(run, t, FWTE, f"Unable to parse duration {duration!r}")
            return
        t.wait_timeout = run.now + ms
    elif until:
        at = parse_until_ms(str(until))
        if at is None:
            finish(run, t, FWTE, f"Unable to parse the 'until' value {until!r}")
            return
        t.wait_timeout = at
    else:
        return  # waits until completed from outside
    t.callback_after_seconds = max(0, (t.wait_timeout - run.now) // 1000)
    if t.wait_timeout <= run.now:
        finish(run, t, COMPLETED)


def _script(run: Any, t: Task) -> None:
    data = t.input_data
    tt = t.task_type
    if tt == "INLINE":
        evaluator = data.get("evaluatorType") or "javascript"
        expression = data.get("expression")
        if evaluator == "value-param":
            t.output_data = {
                "result": data.get(expression) if isinstance(expression, str) else None
            }
            finish(run, t, COMPLETED)
            return
        if evaluator not in ("javascript", "graaljs"):
            finish(run, t, FWTE, f"Unknown evaluator type: {evaluator}")
            return
        if not isinstance(expression, str) or not expression.strip():
            finish(run, t, FWTE, "Empty 'expression' in INLINE task's input parameters")
            return
        flow_tasks.request_script(run, t, "javascript", expression, data)
    elif tt == "LAMBDA":
        script = data.get("scriptExpression")
        if not isinstance(script, str) or not script.strip():
            finish(run, t, FAILED, "Empty 'scriptExpression' in LAMBDA task's input parameters")
            return
        flow_tasks.request_script(run, t, "lambda", script, data)
    else:
        query = data.get("queryExpression")
        if not isinstance(query, str) or not query.strip():
            finish(run, t, FAILED, "Missing 'queryExpression' in JSON_JQ_TRANSFORM input")
            return
        flow_tasks.request_script(run, t, "jq", query, data)


def _event(run: Any, t: Task, node: Any) -> None:
    wt = node.wt
    sink = wt.sink if isinstance(wt.sink, str) else ""
    if "${" in sink:
        sink = str(run.render(_template(sink), t.task_id))
    wf = run.wf
    if sink == "conductor":
        queue = f"conductor:{wf.workflow_name}:{t.reference_task_name}"
    elif sink.startswith("conductor:"):
        queue = f"conductor:{wf.workflow_name}:{sink[len('conductor:') :]}"
    else:
        queue = sink
    if not queue:
        finish(run, t, FAILED, "EVENT task has no sink")
        return
    data = dict(t.input_data)
    data["sink"] = sink
    data["asyncComplete"] = wt.async_complete
    t.input_data = data
    payload = dict(data)
    payload.update(
        workflowInstanceId=wf.workflow_id,
        workflowType=wf.workflow_name,
        workflowVersion=wf.workflow_version,
        correlationId=None if wf.correlation_id is UNSET else wf.correlation_id,
        taskToDomain=dict(wf.task_to_domain),
        event_produced=queue,
    )
    t.output_data = payload
    run.act(ev.PublishEvent(queue=queue, message_id=t.task_id, payload=payload))
    if wt.async_complete:
        t.status = IN_PROGRESS
    else:
        finish(run, t, COMPLETED)


def _template(text: str) -> Any:
    return compile_template(text)


def _sub_workflow(run: Any, t: Task, node: Any) -> None:
    from hotpath.ending import name_uuid

    wf = run.wf
    params = node.wt.sub_workflow_param
    if params is None or params is UNSET:
        finish(run, t, FAILED, "SUB_WORKFLOW task has no subWorkflowParam")
        return
    name = _resolve(run, t, params.name)
    version = _resolve(run, t, params.version)
    ttd = _resolve(run, t, params.task_to_domain)
    definition = params.workflow_definition
    if isinstance(definition, str):
        definition = _resolve(run, t, definition)
        if isinstance(definition, dict):
            definition = msgspec.convert(definition, WorkflowDef)
    if not isinstance(definition, WorkflowDef):
        definition = None
    if definition is not None and not name:
        name = definition.name
    priority = _resolve(run, t, params.priority)
    try:
        version = int(version) if version not in (None, "") else None
        priority = int(priority) if priority not in (None, "") else wf.priority
    except (TypeError, ValueError):
        finish(
            run, t, FAILED, f"Invalid subWorkflowParam version/priority: {version!r}/{priority!r}"
        )
        return
    if not isinstance(name, str) or not name:
        finish(
            run, t, FAILED, "SUB_WORKFLOW task needs subWorkflowParam.name or a workflowDefinition"
        )
        return
    workflow_input = dict(t.input_data)
    data = dict(workflow_input)
    data.update(
        subWorkflowName=name,
        subWorkflowVersion=version,
        subWorkflowTaskToDomain=ttd,
        subWorkflowDefinition=msgspec.to_builtins(definition) if definition is not None else None,
        priority=priority,
        workflowInput=workflow_input,
    )
    t.input_data = data
    child_id = name_uuid(f"subworkflow:{wf.workflow_id}:{t.task_id}:{t.retry_count}")
    t.sub_workflow_id = child_id
    t.output_data = {"subWorkflowId": child_id}
    t.status = IN_PROGRESS
    run.touch()
    run.act(
        ev.StartChildWorkflow(
            task_id=t.task_id,
            workflow_id=child_id,
            name=name,
            version=version,
            workflow_def=definition,
            input=workflow_input,
            correlation_id=None if wf.correlation_id is UNSET else wf.correlation_id,
            task_to_domain=ttd if isinstance(ttd, dict) else dict(wf.task_to_domain),
            priority=priority,
        )
    )


def _resolve(run: Any, t: Task, value: Any) -> Any:
    if value is UNSET:
        return None
    if isinstance(value, str) and "${" in value:
        return run.render(_template(value), t.task_id)
    return value


# --------------------------------------------------------------------------- answers


def on_script_result(run: Any, event: ev.ScriptResult) -> bool:
    t = run.task(event.task_id)
    if not t.script_pending or t.status is not IN_PROGRESS:
        return False  # a late or repeated answer
    t.script_pending = False
    run.touch()
    node = run.node_of(t)
    if node.kind == K_SWITCH:
        flow_tasks.on_switch_value(run, t, node, event.value, event.error)
        return True
    if node.kind == K_DO_WHILE:
        flow_tasks.on_loop_condition(run, t, node, event.value, event.error)
        return True
    tt = t.task_type
    if event.error is not None:
        t.output_data = {"error": event.error}
        status = FWTE if tt == "INLINE" and not event.timed_out else FAILED
        finish(run, t, status, event.error)
    elif tt == "JSON_JQ_TRANSFORM":
        # The runner answers {"result": first, "resultList": [all]}; a bare list is accepted.
        value = event.value
        if isinstance(value, dict) and "resultList" in value:
            t.output_data = dict(value)
        else:
            results = value if isinstance(value, list) else [value]
            t.output_data = {"result": results[0] if results else None, "resultList": results}
        finish(run, t, COMPLETED)
    else:
        t.output_data = {"result": event.value}
        finish(run, t, COMPLETED)
    return True


def on_system_result(run: Any, event: ev.SystemTaskResult) -> bool:
    t = run.task(event.task_id)
    if t.status is not SCHEDULED and t.status is not IN_PROGRESS:
        return False
    if t.start_time == 0:
        t.start_time = run.now
    t.output_data = event.output_data
    if event.reason_for_incompletion is not None:
        t.reason_for_incompletion = event.reason_for_incompletion[:500]
    if event.sub_workflow_id is not None:
        t.sub_workflow_id = event.sub_workflow_id
    if event.status is SCHEDULED or event.status is IN_PROGRESS:
        t.status = IN_PROGRESS
        t.update_time = run.now
        run.touch()
        run.arm(t)
        return False
    finish(run, t, event.status)
    return True


def on_child_update(run: Any, event: ev.ChildWorkflowUpdate) -> bool:
    t = run.task(event.task_id)
    if t.status is not SCHEDULED and t.status is not IN_PROGRESS:
        return False
    status = _CHILD_TO_TASK.get(event.child_status)
    t.sub_workflow_id = event.child_workflow_id
    if status is None:
        return False  # still RUNNING or PAUSED
    output = {"subWorkflowId": event.child_workflow_id}
    output.update(event.child_output)
    t.output_data = output
    reason = None
    if status is not COMPLETED:
        reason = (
            f"Sub workflow {event.child_workflow_id} failure reason: "
            f"{event.reason_for_incompletion}"
        )
    finish(run, t, status, reason)
    return True


# --------------------------------------------------------------------------- hooks


def after_success(run: Any, t: Task, node: Any) -> None:
    if node.kind == K_TERMINATE:
        return  # the workflow ended with it
    if node.kind == K_DO_WHILE:
        run.schedule_after(node, flow_tasks.outer_scope(run, t, node))
        return
    run.schedule_next(t, node)


def on_external_update(run: Any, t: Task, node: Any) -> None:
    """A TaskUpdate finished a system row (WAIT, HUMAN, asyncComplete tasks)."""
    t.script_pending = False


def on_sweep(run: Any, t: Task, node: Any) -> None:
    now = run.now
    if t.status is SCHEDULED and node.kind not in (K_WORKER, K_DYNAMIC):
        if t.callback_after_seconds > 0 and now < t.update_time + t.callback_after_seconds * 1000:
            return
        t.callback_after_seconds = 0
        run.touch()
        start(run, t, node)
        run.arm(t)
    elif node.kind == K_WAIT and 0 < t.wait_timeout <= now:
        finish(run, t, COMPLETED)
    elif t.script_pending:
        # The engine lost the script request (crash before it answered): ask again.
        flow_tasks.repeat_script_request(run, t, node)


def wake_at(run: Any, t: Task, node: Any) -> int:
    """The timer of a system row: a WAIT's end, or the end of a retry delay."""
    if node.kind == K_WAIT and t.status is IN_PROGRESS:
        return int(t.wait_timeout)
    if t.status is SCHEDULED and t.callback_after_seconds > 0:
        return int(t.update_time + t.callback_after_seconds * 1000)
    return 0


def cancel_task(run: Any, t: Task, wf_status: WorkflowStatus) -> None:
    node = run.node_of(t)
    if t.status is SCHEDULED and node.kind in (K_WORKER, K_DYNAMIC):
        run.act(ev.DequeueTask(task_id=t.task_id, queue=run.queue_of(t)))
    if node.kind == K_SUB_WORKFLOW and isinstance(t.sub_workflow_id, str) and t.sub_workflow_id:
        run.act(
            ev.TerminateWorkflow(
                workflow_id=t.sub_workflow_id,
                reason=f"Parent workflow has been terminated with status {wf_status.value}",
            )
        )
    t.status = CANCELED
    t.script_pending = False
    t.end_time = run.now
    t.update_time = run.now
    run.touch()
