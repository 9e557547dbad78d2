"""Definition validation: every problem in a WorkflowDef or TaskDef, each with its path.

Rules:
- Validation reports, it never stops at the first problem: each rule appends a FieldError
  whose path reads like the JSON (`tasks[3].decisionCases.ok[0].taskReferenceName`) and
  whose message says what is wrong and how to fix it. `check_*` raise DefinitionError
  carrying the whole list.
- Errors come out in document order (a depth-first walk of the task tree), so the same
  definition always produces the same list.
- Reference names are one namespace per definition, nested tasks included; an inline
  sub-workflow definition is its own namespace and is validated as a definition.
- `${...}` expressions are parsed by the mapping engine (hotpath.mapping), imported on
  first use so that importing core never loads the hot path. There is one parser.
- Per-type task rules live in core/validation_tasks.py; this module owns the walk, the
  definition-level rules, TaskDef rules, expressions and the decode helpers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from core import codec
from core.enums import TaskType
from core.errors import DefinitionError, FieldError, MappingError
from core.models import TaskDef, WorkflowDef, WorkflowTask
from core.validation_tasks import TaskContext, check_task_type

__all__ = [
    "EXPRESSION_ROOTS",
    "MAX_NESTING",
    "check_task_def",
    "check_workflow_def",
    "decode_task_def",
    "decode_task_defs",
    "decode_workflow_def",
    "decode_workflow_defs",
    "join_path",
    "validate_task_def",
    "validate_workflow_def",
]

# Roots a top-level task's `${...}` may use besides the definition's reference names.
EXPRESSION_ROOTS = frozenset({"workflow", "CPEWF_TASK_ID"})
# Task lists nested deeper than this are reported, not walked: the walk (and the decider)
# recurse, and a hostile body must get a 400, never a RecursionError. Real definitions
# stay far below it; inline sub-workflow definitions count towards the same depth.
MAX_NESTING = 64

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_$-]+$")


def join_path(prefix: str, part: str) -> str:
    """Append a path part: a name (`tasks`) gets a dot, an index (`[0]`) does not."""
    if not prefix:
        return part
    return f"{prefix}{part}" if part.startswith("[") else f"{prefix}.{part}"


def key_path(prefix: str, key: str) -> str:
    """A map key as a path part: `.ok` for plain keys, `["a b"]` for anything else."""
    if _PLAIN_KEY.match(key):
        return join_path(prefix, key)
    return f"{prefix}[{json.dumps(key)}]"


# --------------------------------------------------------------------------- workflows


def validate_workflow_def(
    defn: WorkflowDef,
    *,
    task_defs: Mapping[str, TaskDef] | None = None,
    path: str = "",
) -> list[FieldError]:
    """Every problem in a workflow definition, in document order.

    Args:
        defn: the decoded definition.
        task_defs: the registered TaskDefs by name, consulted where a rule depends on
            them (an HTTP task whose TaskDef template supplies `http_request`). None
            means no TaskDef is registered.
        path: a prefix for every error path (`workflowDef` for a StartWorkflowRequest).

    Returns:
        The problems found; empty when the definition is valid.
    """
    errors: list[FieldError] = []
    _validate_definition(defn, path, task_defs or {}, errors)
    return errors


def check_workflow_def(
    defn: WorkflowDef,
    *,
    task_defs: Mapping[str, TaskDef] | None = None,
    path: str = "",
) -> None:
    """Validate a workflow definition.

    Raises:
        DefinitionError: with every problem found (HTTP 400).
    """
    errors = validate_workflow_def(defn, task_defs=task_defs, path=path)
    if errors:
        raise DefinitionError(errors, subject="workflow definition")


def _validate_definition(
    defn: WorkflowDef,
    prefix: str,
    task_defs: Mapping[str, TaskDef],
    errors: list[FieldError],
    depth: int = 0,
) -> None:
    if not defn.name.strip():
        errors.append(
            FieldError(join_path(prefix, "name"), "must not be empty; give the workflow a name")
        )
    if defn.schema_version != 2:
        errors.append(
            FieldError(
                join_path(prefix, "schemaVersion"),
                f"must be 2, got {defn.schema_version}; only schema version 2 definitions run "
                '(inputs written as ${...} expressions), set "schemaVersion": 2',
                defn.schema_version,
            )
        )
    if defn.timeout_seconds < 0:
        errors.append(
            FieldError(
                join_path(prefix, "timeoutSeconds"),
                f"must be >= 0, got {defn.timeout_seconds}; use 0 for no workflow timeout",
                defn.timeout_seconds,
            )
        )
    tasks_path = join_path(prefix, "tasks")
    if not defn.tasks:
        errors.append(
            FieldError(tasks_path, 'a workflow needs at least one task; add a task to "tasks"')
        )
    walk = _Walk(
        all_refs=frozenset(t.task_reference_name for t, _ in iter_tasks(defn.tasks, tasks_path)),
        task_defs=task_defs,
        errors=errors,
    )
    walk.task_list(defn.tasks, tasks_path, top_level=True, depth=depth)
    check_expressions(defn.output_parameters, join_path(prefix, "outputParameters"), errors)


def iter_tasks(
    tasks: list[WorkflowTask], path: str, depth: int = 0
) -> Iterator[tuple[WorkflowTask, str]]:
    """Every task of a task list and of its nested lists (down to MAX_NESTING levels),
    depth first, with its path."""
    if depth > MAX_NESTING:
        return
    for i, task in enumerate(tasks):
        task_path = f"{path}[{i}]"
        yield task, task_path
        for child_list, child_path in child_lists(task, task_path):
            yield from iter_tasks(child_list, child_path, depth + 1)


def child_lists(task: WorkflowTask, path: str) -> Iterator[tuple[list[WorkflowTask], str]]:
    """The task lists nested in one task (decision cases, default case, forks, loop body)."""
    cases = join_path(path, "decisionCases")
    for case, case_tasks in task.decision_cases.items():
        yield case_tasks, key_path(cases, case)
    if task.default_case:
        yield task.default_case, join_path(path, "defaultCase")
    forks = join_path(path, "forkTasks")
    for i, branch in enumerate(task.fork_tasks):
        yield branch, f"{forks}[{i}]"
    if task.loop_over:
        yield task.loop_over, join_path(path, "loopOver")


class _Walk:
    """One definition's walk: reference bookkeeping shared by every task list."""

    def __init__(
        self,
        *,
        all_refs: frozenset[str],
        task_defs: Mapping[str, TaskDef],
        errors: list[FieldError],
    ) -> None:
        self.all_refs = all_refs
        self.task_defs = task_defs
        self.errors = errors
        self.first_seen: dict[str, str] = {}

    def task_list(
        self, tasks: list[WorkflowTask], path: str, *, top_level: bool, depth: int
    ) -> None:
        if depth > MAX_NESTING:
            self.errors.append(
                FieldError(
                    path,
                    f"task lists are nested more than {MAX_NESTING} levels deep; flatten the "
                    "definition (move deep branches into sub-workflows)",
                )
            )
            return
        for i, task in enumerate(tasks):
            task_path = f"{path}[{i}]"
            context = TaskContext(
                path=task_path,
                next_task=tasks[i + 1] if i + 1 < len(tasks) else None,
                previous_task=tasks[i - 1] if i > 0 else None,
                all_refs=self.all_refs,
                task_defs=self.task_defs,
            )
            self.task(task, context, top_level=top_level, depth=depth)
            for child_list, child_path in child_lists(task, task_path):
                self.task_list(child_list, child_path, top_level=False, depth=depth + 1)

    def task(self, task: WorkflowTask, ctx: TaskContext, *, top_level: bool, depth: int) -> None:
        errors = self.errors
        path = ctx.path
        if not task.name.strip():
            errors.append(
                FieldError(
                    join_path(path, "name"),
                    "must not be empty; set the task's name (the TaskDef name for a worker task)",
                )
            )
        ref = task.task_reference_name
        if not ref.strip():
            errors.append(
                FieldError(
                    join_path(path, "taskReferenceName"),
                    "must not be empty; give the task a reference name unique in the workflow",
                )
            )
        elif ref in self.first_seen:
            errors.append(
                FieldError(
                    join_path(path, "taskReferenceName"),
                    f"duplicate reference '{ref}' (first used at {self.first_seen[ref]}); "
                    "reference names must be unique across the definition",
                    ref,
                )
            )
        else:
            self.first_seen[ref] = path
        if not task.type.strip():
            errors.append(
                FieldError(
                    join_path(path, "type"),
                    'must not be empty; omit "type" for a SIMPLE task or name a task type',
                )
            )
        if task.start_delay < 0:
            errors.append(
                FieldError(
                    join_path(path, "startDelay"),
                    f"must be >= 0, got {task.start_delay}; it is the delay in seconds "
                    "before the task can be polled",
                    task.start_delay,
                )
            )
        if isinstance(task.retry_count, int) and task.retry_count < 0:
            errors.append(
                FieldError(
                    join_path(path, "retryCount"),
                    f"must be >= 0, got {task.retry_count}; it overrides the TaskDef's "
                    "retryCount (0 = no retries)",
                    task.retry_count,
                )
            )
        if isinstance(task.task_definition, TaskDef):
            errors.extend(
                validate_task_def(
                    task.task_definition, path=join_path(path, "taskDefinition"), inline=True
                )
            )
        errors.extend(check_task_type(task, ctx))
        self.expressions(task, path, top_level=top_level)
        sub = task.sub_workflow_param
        if (
            task.type == TaskType.SUB_WORKFLOW
            and sub
            and isinstance(sub.workflow_definition, WorkflowDef)
        ):
            _validate_definition(
                sub.workflow_definition,
                join_path(path, "subWorkflowParam.workflowDefinition"),
                self.task_defs,
                errors,
                depth + 1,
            )

    def expressions(self, task: WorkflowTask, path: str, *, top_level: bool) -> None:
        inputs_path = join_path(path, "inputParameters")
        # Only top-level tasks have their roots checked, as in Conductor: a nested task
        # may legitimately read a sibling branch's output that is absent at runtime.
        known = (self.all_refs | EXPRESSION_ROOTS) if top_level else None
        check_expressions(task.input_parameters, inputs_path, self.errors, known_roots=known)
        for field, value in _expression_fields(task):
            if isinstance(value, str):
                check_expressions(value, join_path(path, field), self.errors)


def _expression_fields(task: WorkflowTask) -> Iterator[tuple[str, object]]:
    """WorkflowTask fields other than inputParameters that may hold `${...}`."""
    yield "sink", task.sink
    yield "items", task.items
    sub = task.sub_workflow_param
    if sub:
        yield "subWorkflowParam.name", sub.name
        yield "subWorkflowParam.version", sub.version
        yield "subWorkflowParam.priority", sub.priority
        yield "subWorkflowParam.taskToDomain", sub.task_to_domain
        yield "subWorkflowParam.workflowDefinition", sub.workflow_definition


# --------------------------------------------------------------------------- expressions


def check_expressions(
    value: Any,
    path: str,
    errors: list[FieldError],
    *,
    known_roots: frozenset[str] | None = None,
) -> None:
    """Parse every `${...}` in a JSON value (strings inside maps and lists).

    Args:
        value: a JSON value (usually an inputParameters map).
        path: the value's path, extended with map keys and list indices.
        errors: problems are appended here.
        known_roots: when given, every expression root must be one of these names.
    """
    if isinstance(value, str):
        if "${" in value:
            _check_one_expression(value, path, errors, known_roots)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_expressions(item, key_path(path, str(key)), errors, known_roots=known_roots)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_expressions(item, f"{path}[{i}]", errors, known_roots=known_roots)


def _check_one_expression(
    text: str, path: str, errors: list[FieldError], known_roots: frozenset[str] | None
) -> None:
    from hotpath.mapping import compile_template  # first use only: see the module header

    try:
        template = compile_template(text)
    except MappingError as exc:
        # The mapping engine's message names the expression, the offset and the fix.
        errors.append(FieldError(path, exc.message, text))
        return
    if known_roots is None:
        return
    for root in sorted(template.roots - known_roots):
        errors.append(
            FieldError(
                path,
                f"'{text}' refers to '{root}', which is not a task reference in this "
                f"workflow; use the taskReferenceName of a task in the definition, or "
                f"workflow.input / workflow.variables",
                text,
            )
        )


# --------------------------------------------------------------------------- task defs


def validate_task_def(td: TaskDef, *, path: str = "", inline: bool = False) -> list[FieldError]:
    """Every problem in a task definition.

    Args:
        td: the decoded TaskDef.
        path: a prefix for error paths (`[2]` in a list, `tasks[0].taskDefinition` inline).
        inline: a `taskDefinition` embedded in a workflow task. Conductor does not apply
            its cross-field timeout rules there (its own test definitions break them), so
            only the per-field ranges are checked.

    Returns:
        The problems found; empty when the TaskDef is valid.
    """
    errors: list[FieldError] = []

    def add(field: str, message: str, value: object) -> None:
        errors.append(FieldError(join_path(path, field), message, value))

    if not td.name.strip():
        add("name", "must not be empty; name the task type that workers poll for", td.name)
    for field, value, minimum, meaning in (
        ("retryCount", td.retry_count, 0, "the number of retries after the first attempt"),
        ("retryDelaySeconds", td.retry_delay_seconds, 0, "the base delay before a retry"),
        ("backoffScaleFactor", td.backoff_scale_factor, 1, "the LINEAR_BACKOFF multiplier"),
        ("maxRetryDelaySeconds", td.max_retry_delay_seconds, 0, "the cap on a retry delay"),
        ("backoffJitterMs", td.backoff_jitter_ms, 0, "the random delay added to a retry"),
        ("timeoutSeconds", td.timeout_seconds, 0, "use 0 for no timeout"),
        (
            "responseTimeoutSeconds",
            td.response_timeout_seconds,
            1,
            "how long a started task may go without a worker update",
        ),
        ("totalTimeoutSeconds", td.total_timeout_seconds, 0, "use 0 for no budget"),
        ("pollTimeoutSeconds", td.poll_timeout_seconds, 0, "use 0 or null for none"),
        ("concurrentExecLimit", td.concurrent_exec_limit, 0, "use 0 or null for no limit"),
        ("rateLimitPerFrequency", td.rate_limit_per_frequency, 0, "use 0 for no rate limit"),
        (
            "rateLimitFrequencyInSeconds",
            td.rate_limit_frequency_in_seconds,
            0,
            "the rate limit window",
        ),
    ):
        if isinstance(value, int) and value < minimum:
            prefix = "" if meaning.startswith("use") else "it is "
            add(field, f"must be >= {minimum}, got {value}; {prefix}{meaning}", value)
    per_frequency = td.rate_limit_per_frequency
    frequency = td.rate_limit_frequency_in_seconds
    if isinstance(per_frequency, int) and per_frequency > 0 and frequency == 0:
        add(
            "rateLimitFrequencyInSeconds",
            "must be >= 1 when rateLimitPerFrequency is set, got 0; it is the rate limit "
            "window in seconds",
            frequency,
        )
    if not inline:
        timeout = td.timeout_seconds
        if timeout > 0 and td.response_timeout_seconds > timeout:
            add(
                "responseTimeoutSeconds",
                f"{td.response_timeout_seconds} exceeds timeoutSeconds {timeout}; make "
                "responseTimeoutSeconds <= timeoutSeconds, or set timeoutSeconds to 0 for no "
                "overall timeout",
                td.response_timeout_seconds,
            )
        if timeout > 0 and 0 < td.total_timeout_seconds < timeout:
            add(
                "totalTimeoutSeconds",
                f"{td.total_timeout_seconds} is less than timeoutSeconds {timeout}; the budget "
                "across all retries must cover one attempt, raise it or set 0 for no budget",
                td.total_timeout_seconds,
            )
    check_expressions(td.input_template, join_path(path, "inputTemplate"), errors)
    return errors


def check_task_def(td: TaskDef, *, path: str = "") -> None:
    """Validate a task definition.

    Raises:
        DefinitionError: with every problem found (HTTP 400).
    """
    errors = validate_task_def(td, path=path)
    if errors:
        raise DefinitionError(errors, subject="task definition")


# --------------------------------------------------------------------------- decoding


def decode_workflow_def(
    data: bytes | str, *, task_defs: Mapping[str, TaskDef] | None = None
) -> WorkflowDef:
    """Decode and validate one workflow definition (a request body).

    Raises:
        DefinitionError: malformed JSON, a wrongly typed field, or any rule broken.
    """
    defn = codec.decode(data, WorkflowDef, subject="workflow definition")
    check_workflow_def(defn, task_defs=task_defs)
    return defn


def decode_workflow_defs(
    data: bytes | str, *, task_defs: Mapping[str, TaskDef] | None = None
) -> list[WorkflowDef]:
    """Decode and validate a JSON list of workflow definitions; paths start with `[i]`.

    Raises:
        DefinitionError: every problem of every definition in the list.
    """
    defs = codec.decode(data, list[WorkflowDef], subject="workflow definitions")
    errors: list[FieldError] = []
    if not defs:
        errors.append(FieldError("", "the list is empty; send at least one workflow definition"))
    for i, defn in enumerate(defs):
        errors.extend(validate_workflow_def(defn, task_defs=task_defs, path=f"[{i}]"))
    if errors:
        raise DefinitionError(errors, subject="workflow definitions")
    return defs


def decode_task_def(data: bytes | str) -> TaskDef:
    """Decode and validate one task definition.

    Raises:
        DefinitionError: malformed JSON, a wrongly typed field, or any rule broken.
    """
    td = codec.decode(data, TaskDef, subject="task definition")
    check_task_def(td)
    return td


def decode_task_defs(data: bytes | str) -> list[TaskDef]:
    """Decode and validate a JSON list of task definitions; paths start with `[i]`.

    Raises:
        DefinitionError: every problem of every TaskDef in the list.
    """
    defs = codec.decode(data, list[TaskDef], subject="task definitions")
    errors: list[FieldError] = []
    if not defs:
        errors.append(FieldError("", "the list is empty; send at least one task definition"))
    for i, td in enumerate(defs):
        errors.extend(validate_task_def(td, path=f"[{i}]"))
    if errors:
        raise DefinitionError(errors, subject="task definitions")
    return defs
