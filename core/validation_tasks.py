"""Per-type WorkflowTask rules: what each task type needs before it can run.

Rules:
- One checker per task type, registered in TYPE_RULES; a type without a checker (SIMPLE,
  any worker type, SET_VARIABLE, NOOP, HUMAN, ...) has no type-specific rules.
- A checker yields FieldErrors with the field's path and a message that names the fix.
- Values that hold a `${...}` expression are decided at runtime and are not judged here;
  literal values are (WAIT durations and dates, TERMINATE statuses, HTTP methods).
- The rules follow Conductor's (spec 2.3); additions are listed in
  docs/compatibility.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from core.enums import TaskType
from core.errors import FieldError
from core.models import TaskDef, WorkflowTask

__all__ = ["EVALUATOR_TYPES", "HTTP_METHODS", "TYPE_RULES", "TaskContext", "check_task_type"]

# Script evaluators Podium runs (SWITCH evaluatorType, INLINE inputParameters.evaluatorType).
EVALUATOR_TYPES = ("value-param", "javascript", "graaljs")
HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH")
TERMINATION_STATUSES = ("COMPLETED", "FAILED", "TERMINATED")

# WAIT durations: amounts with units, in the order days, hours, minutes, seconds.
_DURATION_RE = re.compile(
    r"\s*(?:(\d+)\s*(?:days?|d))?"
    r"\s*(?:(\d+)\s*(?:hours?|hrs?|h))?"
    r"\s*(?:(\d+)\s*(?:minutes?|mins?|m))?"
    r"\s*(?:(\d+)\s*(?:seconds?|secs?|s))?\s*",
    re.IGNORECASE,
)
# WAIT until: `yyyy-MM-dd`, `yyyy-MM-dd HH:mm` or `yyyy-MM-dd HH:mm <zone>`.
_UNTIL_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2})(?: ([A-Za-z][\w+\-]*(?:/[\w+\-]+)*"
    r"|[+-]\d{2}:?\d{2}))?)?"
)


@dataclass(frozen=True, slots=True)
class TaskContext:
    """Where a task sits: its path, its neighbours in its list, the definition's refs."""

    path: str
    next_task: WorkflowTask | None
    previous_task: WorkflowTask | None
    all_refs: frozenset[str]
    task_defs: Mapping[str, TaskDef]


Checker = Callable[[WorkflowTask, TaskContext], Iterator[FieldError]]


def check_task_type(task: WorkflowTask, ctx: TaskContext) -> list[FieldError]:
    """The problems of one task against its type's rules (none for worker types)."""
    checker = TYPE_RULES.get(task.type)
    return list(checker(task, ctx)) if checker else []


def _at(ctx: TaskContext, field: str) -> str:
    return f"{ctx.path}.{field}"


def _missing(value: object) -> bool:
    """UNSET, null or a blank string."""
    return value is None or not value or (isinstance(value, str) and not value.strip())


def _is_expression(value: object) -> bool:
    return isinstance(value, str) and "${" in value


def _template_has(task: WorkflowTask, ctx: TaskContext, key: str) -> bool:
    """The task's TaskDef (inline, else registered) supplies `key` through inputTemplate."""
    td = task.task_definition if isinstance(task.task_definition, TaskDef) else None
    td = td or ctx.task_defs.get(task.name)
    return td is not None and key in td.input_template


def _event(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    if _missing(task.sink):
        yield FieldError(
            _at(ctx, "sink"),
            'an EVENT task needs a sink; set "sink", e.g. "conductor" or "sqs:<queue name>"',
        )


def _cases(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    if not task.decision_cases:
        yield FieldError(
            _at(ctx, "decisionCases"),
            f"a {task.type} task needs at least one case; add a decisionCases entry that "
            "maps a case value to a task list",
        )


def _decision(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    if _missing(task.case_value_param) and _missing(task.case_expression):
        yield FieldError(
            _at(ctx, "caseValueParam"),
            "a DECISION task needs caseValueParam (an input key) or caseExpression "
            "(JavaScript); set one of them",
        )
    yield from _cases(task, ctx)


def _switch(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    if _missing(task.evaluator_type):
        yield FieldError(
            _at(ctx, "evaluatorType"),
            'a SWITCH task needs an evaluatorType; set "value-param" (expression names an '
            'input key) or "javascript" (expression is a script over $)',
        )
    elif task.evaluator_type not in EVALUATOR_TYPES:
        yield FieldError(
            _at(ctx, "evaluatorType"),
            f"unknown evaluatorType '{task.evaluator_type}'; use one of "
            f"{', '.join(EVALUATOR_TYPES)}",
            task.evaluator_type,
        )
    if _missing(task.expression):
        yield FieldError(
            _at(ctx, "expression"),
            "a SWITCH task needs an expression; with value-param name an inputParameters "
            "key, with javascript write a script over $ whose result picks the case",
        )
    yield from _cases(task, ctx)


def _dynamic(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    param = task.dynamic_task_name_param
    if not isinstance(param, str) or _missing(param):
        yield FieldError(
            _at(ctx, "dynamicTaskNameParam"),
            "a DYNAMIC task needs dynamicTaskNameParam; set it to the inputParameters key "
            "whose value names the task to run",
        )
    else:
        yield from _input_key(task, ctx, "dynamicTaskNameParam", param, "names the task to run")


def _input_key(
    task: WorkflowTask, ctx: TaskContext, field: str, key: str, meaning: str
) -> Iterator[FieldError]:
    if key not in task.input_parameters:
        yield FieldError(
            _at(ctx, "inputParameters"),
            f"{field} is '{key}' but inputParameters has no '{key}'; add it (its value {meaning})",
        )


def _followed_by_join(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    nxt = ctx.next_task
    if nxt is None or nxt.type != TaskType.JOIN:
        yield FieldError(
            ctx.path,
            f"a {task.type} must be followed by a JOIN in the same task list; add a JOIN "
            f"right after '{task.task_reference_name}'",
        )


def _fork_join(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    if not task.fork_tasks:
        yield FieldError(
            _at(ctx, "forkTasks"),
            "a FORK_JOIN task needs at least one branch; add task lists to forkTasks",
        )
    for i, branch in enumerate(task.fork_tasks):
        if not branch:
            yield FieldError(
                f"{ctx.path}.forkTasks[{i}]",
                "a fork branch needs at least one task; add tasks to the branch or remove it",
            )
    yield from _followed_by_join(task, ctx)


def _fork_join_dynamic(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    legacy = task.dynamic_fork_join_tasks_param
    tasks_param = task.dynamic_fork_tasks_param
    input_param = task.dynamic_fork_tasks_input_param_name
    has_new_form = not (_missing(tasks_param) and _missing(input_param))
    if not _missing(legacy) and has_new_form:
        yield FieldError(
            _at(ctx, "dynamicForkJoinTasksParam"),
            "use either dynamicForkJoinTasksParam (legacy) or dynamicForkTasksParam with "
            "dynamicForkTasksInputParamName, not both; remove one form",
        )
    elif isinstance(legacy, str) and legacy.strip():
        yield from _input_key(
            task, ctx, "dynamicForkJoinTasksParam", legacy, "is the dynamic tasks object"
        )
    elif "forkTaskInputs" not in task.input_parameters:
        if not isinstance(tasks_param, str) or _missing(tasks_param):
            yield FieldError(
                _at(ctx, "dynamicForkTasksParam"),
                "a FORK_JOIN_DYNAMIC task needs dynamicForkTasksParam (the input key holding "
                "the task list); set it, or fork one task per item with "
                "inputParameters.forkTaskInputs",
            )
        else:
            yield from _input_key(
                task, ctx, "dynamicForkTasksParam", tasks_param, "is the list of tasks to fork"
            )
        if not isinstance(input_param, str) or _missing(input_param):
            yield FieldError(
                _at(ctx, "dynamicForkTasksInputParamName"),
                "a FORK_JOIN_DYNAMIC task needs dynamicForkTasksInputParamName (the input key "
                "holding each forked task's input, by reference name); set it",
            )
        else:
            yield from _input_key(
                task,
                ctx,
                "dynamicForkTasksInputParamName",
                input_param,
                "maps each forked task's reference name to its input",
            )
    yield from _followed_by_join(task, ctx)


def _join_refs(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    prev = ctx.previous_task
    # After a dynamic fork, the JOIN's joinOn is computed at runtime from the forked tasks.
    if task.type == TaskType.JOIN and prev is not None and prev.type == TaskType.FORK_JOIN_DYNAMIC:
        return
    for field, refs in (
        ("joinOn", task.join_on),
        ("defaultExclusiveJoinTask", task.default_exclusive_join_task),
    ):
        for i, ref in enumerate(refs):
            if ref not in ctx.all_refs:
                yield FieldError(
                    f"{ctx.path}.{field}[{i}]",
                    f"'{ref}' is not a task reference in this workflow; list the "
                    "taskReferenceNames of the tasks to wait for",
                    ref,
                )


def _http(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    inputs = task.input_parameters
    request = inputs.get("http_request")
    request_path = _at(ctx, "inputParameters.http_request")
    if request is None:
        if "uri" in inputs or "method" in inputs:
            yield from _http_fields(inputs, _at(ctx, "inputParameters"))
        elif not _template_has(task, ctx, "http_request"):
            yield FieldError(
                request_path,
                "an HTTP task needs a request; add inputParameters.http_request with uri and "
                "method (or uri and method directly in inputParameters), or use a TaskDef "
                "whose inputTemplate has http_request",
            )
    elif isinstance(request, dict):
        yield from _http_fields(request, request_path)
    elif not _is_expression(request):
        yield FieldError(
            request_path,
            "must be an object with uri and method, or a ${...} expression that yields one",
            request,
        )


def _http_fields(request: Mapping[str, Any], path: str) -> Iterator[FieldError]:
    if _missing(request.get("uri")):
        yield FieldError(f"{path}.uri", "required; set the URL to call")
    method = request.get("method")
    if _missing(method):
        yield FieldError(f"{path}.method", f"required; set one of {', '.join(HTTP_METHODS)}")
    elif not _is_expression(method) and (
        not isinstance(method, str) or method.upper() not in HTTP_METHODS
    ):
        yield FieldError(
            f"{path}.method", f"unknown method {method!r}; use one of {', '.join(HTTP_METHODS)}"
        )


def _kafka(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    if "kafka_request" not in task.input_parameters and not _template_has(
        task, ctx, "kafka_request"
    ):
        yield FieldError(
            _at(ctx, "inputParameters.kafka_request"),
            "a KAFKA_PUBLISH task needs inputParameters.kafka_request (bootStrapServers, "
            "topic, value), or a TaskDef whose inputTemplate has kafka_request",
        )


def _required_input(key: str, message: str) -> Checker:
    def check(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
        if _missing(task.input_parameters.get(key)):
            yield FieldError(_at(ctx, f"inputParameters.{key}"), message)

    return check


def _inline(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    yield from _required_input(
        "expression",
        "an INLINE task needs a script; add inputParameters.expression (evaluatorType "
        "defaults to javascript)",
    )(task, ctx)
    evaluator = task.input_parameters.get("evaluatorType")
    if (
        evaluator is not None
        and not _is_expression(evaluator)
        and evaluator not in (EVALUATOR_TYPES)
    ):
        yield FieldError(
            _at(ctx, "inputParameters.evaluatorType"),
            f"unknown evaluatorType {evaluator!r}; use one of {', '.join(EVALUATOR_TYPES)}",
            evaluator,
        )


def _terminate(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    if task.optional:
        yield FieldError(
            _at(ctx, "optional"), 'a TERMINATE task cannot be optional; remove "optional": true'
        )
    status = task.input_parameters.get("terminationStatus")
    path = _at(ctx, "inputParameters.terminationStatus")
    choices = ", ".join(TERMINATION_STATUSES)
    if _missing(status):
        yield FieldError(
            path,
            f"a TERMINATE task needs a terminationStatus; set "
            f"inputParameters.terminationStatus to one of {choices}",
        )
    elif not _is_expression(status) and status not in TERMINATION_STATUSES:
        yield FieldError(path, f"must be one of {choices}, got {status!r}", status)


def _do_while(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    if not isinstance(task.loop_condition, str):
        yield FieldError(
            _at(ctx, "loopCondition"),
            "a DO_WHILE task needs a loopCondition (JavaScript, true = run again); set it, "
            'or "" when iterating over items',
        )
    if not task.loop_over:
        yield FieldError(
            _at(ctx, "loopOver"),
            "a DO_WHILE task needs at least one task in loopOver; add the loop body",
        )


def _sub_workflow(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    param = task.sub_workflow_param
    if not param:
        yield FieldError(
            _at(ctx, "subWorkflowParam"),
            'a SUB_WORKFLOW task needs subWorkflowParam; set {"name": <workflow name>, '
            '"version": <n>} or an inline workflowDefinition',
        )
        return
    definition = param.workflow_definition
    if _missing(param.name) and _missing(definition):
        yield FieldError(
            _at(ctx, "subWorkflowParam.name"),
            "required unless workflowDefinition is given; name the workflow to start",
        )
    if isinstance(definition, str) and not _is_expression(definition):
        yield FieldError(
            _at(ctx, "subWorkflowParam.workflowDefinition"),
            "a string here must be a ${...} expression that yields a workflow definition; "
            "write the definition inline as an object instead",
            definition,
        )
    version = param.version
    if isinstance(version, str) and not _is_expression(version) and not version.isdigit():
        yield FieldError(
            _at(ctx, "subWorkflowParam.version"),
            f"must be a version number or a ${{...}} expression, got {version!r}; omit it "
            "for the latest version",
            version,
        )


def _start_workflow(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    request = task.input_parameters.get("startWorkflow")
    path = _at(ctx, "inputParameters.startWorkflow")
    if _missing(request):
        yield FieldError(
            path,
            "a START_WORKFLOW task needs inputParameters.startWorkflow, a start request with "
            'at least "name"; add it',
        )
    elif isinstance(request, dict):
        if _missing(request.get("name")):
            yield FieldError(f"{path}.name", "required; name the workflow to start")
    elif not _is_expression(request):
        yield FieldError(
            path, "must be an object (a start request) or a ${...} expression", request
        )


def _wait(task: WorkflowTask, ctx: TaskContext) -> Iterator[FieldError]:
    inputs = task.input_parameters
    duration, until = inputs.get("duration"), inputs.get("until")
    if not _missing(duration) and not _missing(until):
        yield FieldError(
            _at(ctx, "inputParameters"),
            "a WAIT task takes either duration or until, not both; remove one",
        )
        return
    if (
        not _missing(duration)
        and not _is_expression(duration)
        and (not isinstance(duration, str) or not _DURATION_RE.fullmatch(duration))
    ):
        yield FieldError(
            _at(ctx, "inputParameters.duration"),
            f"cannot parse duration {duration!r}; write amounts with units in the order "
            'days, hours, minutes, seconds, e.g. "30 seconds", "5 mins" or "1d 2h 3m 4s"',
            duration,
        )
    if not _missing(until) and not _is_expression(until) and not _valid_until(until):
        yield FieldError(
            _at(ctx, "inputParameters.until"),
            f'cannot parse until {until!r}; use "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm z" '
            '(z = a time zone such as UTC) or "yyyy-MM-dd"',
            until,
        )


def _valid_until(value: object) -> bool:
    if not isinstance(value, str):
        return False
    m = _UNTIL_RE.fullmatch(value.strip())
    if m is None:
        return False
    year, month, day, hour, minute = (int(g) if g else 0 for g in m.groups()[:5])
    try:
        date(year, month, day)
        time(hour, minute)
    except ValueError:
        return False
    return True


TYPE_RULES: dict[str, Checker] = {
    TaskType.EVENT: _event,
    TaskType.DECISION: _decision,
    TaskType.SWITCH: _switch,
    TaskType.DYNAMIC: _dynamic,
    TaskType.FORK_JOIN: _fork_join,
    TaskType.FORK_JOIN_DYNAMIC: _fork_join_dynamic,
    TaskType.JOIN: _join_refs,
    TaskType.EXCLUSIVE_JOIN: _join_refs,
    TaskType.HTTP: _http,
    TaskType.KAFKA_PUBLISH: _kafka,
    TaskType.JSON_JQ_TRANSFORM: _required_input(
        "queryExpression",
        "a JSON_JQ_TRANSFORM task needs a jq program; add inputParameters.queryExpression, "
        'e.g. ".key"',
    ),
    TaskType.INLINE: _inline,
    TaskType.LAMBDA: _required_input(
        "scriptExpression",
        "a LAMBDA task needs a script; add inputParameters.scriptExpression (or use INLINE)",
    ),
    TaskType.TERMINATE: _terminate,
    TaskType.DO_WHILE: _do_while,
    TaskType.SUB_WORKFLOW: _sub_workflow,
    TaskType.START_WORKFLOW: _start_workflow,
    TaskType.WAIT: _wait,
}
