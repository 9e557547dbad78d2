"""Workers: what the TaskRunner runs, and how a worker's outcome becomes a TaskResult.

Rules:
- A worker is anything with `task_definition_name` and `execute(task)`; `execute` may be
  a plain function (the runner calls it on a thread) or a coroutine function (awaited on
  the trio loop). Optional attributes: `domain` (the task domain to poll) and
  `poll_count` (the most tasks of this type run at once; the runner's `concurrency` when
  absent).
- Outcome to result, one rule per shape (Conductor's SDK behaves the same):
  a dict (or any Struct/dataclass, converted to one) is COMPLETED with that output; None
  is COMPLETED with `{}`; any other JSON value is COMPLETED with `{"result": value}`;
  `InProgress(callback_after_seconds, output)` is IN_PROGRESS, so the server hands the
  same task back after that many seconds; a `TaskResult` is sent as is (the worker id is
  filled in). Raising `NonRetryableError` is FAILED_WITH_TERMINAL_ERROR (no retries);
  raising anything else is FAILED with `reasonForIncompletion = str(exc)` and the
  traceback as a task log, and the server retries per the task definition.
- An output that cannot be encoded as JSON is a FAILED result naming the problem, never
  an exception in the runner.
- `@worker("type")` turns a plain function into a worker: parameters are filled from the
  task's `inputData` by name (a missing key gives the parameter's default, else None;
  `**kwargs` receives the rest), or the function gets the whole `Task` when its one
  parameter is annotated `Task`. An input for a parameter annotated with a dataclass or
  msgspec Struct is converted to it; input that does not fit fails the task for good
  (FAILED_WITH_TERMINAL_ERROR), naming the field. The decorated object stays callable as
  the function.
- A returned `TaskResult` always reports on the task that was run: its task and workflow
  ids are overwritten with the polled task's.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
import traceback
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import msgspec

from core.enums import TaskResultStatus
from core.models import UNSET, Task, TaskExecLogEntry, TaskResult

__all__ = [
    "AsyncFunctionWorker",
    "FunctionWorker",
    "InProgress",
    "NonRetryableError",
    "SyncFunctionWorker",
    "Worker",
    "result_from_error",
    "result_from_value",
    "worker",
    "worker_domain",
    "worker_poll_count",
]


class NonRetryableError(Exception):
    """Raise from a worker to fail its task for good (FAILED_WITH_TERMINAL_ERROR)."""


@dataclasses.dataclass(frozen=True, slots=True)
class InProgress:
    """Return from a worker to report progress: the task comes back after a delay.

    Attributes:
        callback_after_seconds: how long the server waits before handing the task out again.
        output: output so far; it replaces the task's output, as any update does.
    """

    callback_after_seconds: int = 0
    output: dict[str, Any] = dataclasses.field(default_factory=dict)


@runtime_checkable
class Worker(Protocol):
    """What the TaskRunner runs. `execute` may be a plain or a coroutine function."""

    task_definition_name: str

    def execute(self, task: Task) -> Any:
        """Run one task; return its outcome (see the module rules) or raise."""
        ...


def worker_domain(w: Worker) -> str | None:
    """The task domain a worker polls (its optional `domain` attribute), or None."""
    domain = getattr(w, "domain", None)
    return domain if isinstance(domain, str) and domain else None


def worker_poll_count(w: Worker, default: int) -> int:
    """How many tasks of this worker's type may run at once (`poll_count`, else default)."""
    count = getattr(w, "poll_count", None)
    if count is None:
        return default
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(
            f"worker {w.task_definition_name!r}: poll_count must be a positive int, got {count!r}"
        )
    return count


def _now_ms() -> int:
    return int(time.time() * 1000)


def _base(task: Task, worker_id: str | None) -> TaskResult:
    return TaskResult(
        workflow_instance_id=task.workflow_instance_id,
        task_id=task.task_id,
        worker_id=worker_id if worker_id is not None else UNSET,
    )


def _json_output(value: Any) -> tuple[dict[str, Any] | None, str]:
    """Value as a JSON object for outputData, or (None, why not)."""
    try:
        plain = msgspec.to_builtins(value, str_keys=True)
        msgspec.json.encode(plain)
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        return None, f"the worker's output is not JSON ({type(exc).__name__}: {exc})"
    if plain is None:
        return {}, ""
    if isinstance(plain, dict):
        return plain, ""
    return {"result": plain}, ""


def result_from_value(task: Task, value: Any, *, worker_id: str | None = None) -> TaskResult:
    """The TaskResult for what a worker returned (see the module rules).

    Args:
        task: the task the worker ran.
        value: its return value.
        worker_id: recorded on the result when the result does not name one.

    Returns:
        A TaskResult ready for `update-v2`.
    """
    if isinstance(value, TaskResult):
        # A worker may only report on the task it was given (the SDK enforces this too).
        value.task_id = task.task_id
        value.workflow_instance_id = task.workflow_instance_id
        if value.worker_id is UNSET and worker_id is not None:
            value.worker_id = worker_id
        return value
    result = _base(task, worker_id)
    if isinstance(value, InProgress):
        output, problem = _json_output(value.output)
        if output is None:
            return _failed(result, problem)
        if value.callback_after_seconds < 0:
            return _failed(
                result,
                "InProgress.callback_after_seconds must be >= 0, got "
                f"{value.callback_after_seconds}",
            )
        result.status = TaskResultStatus.IN_PROGRESS
        result.callback_after_seconds = value.callback_after_seconds
        result.output_data = output
        return result
    output, problem = _json_output(value)
    if output is None:
        return _failed(result, problem)
    result.status = TaskResultStatus.COMPLETED
    result.output_data = output
    return result


def _failed(result: TaskResult, reason: str) -> TaskResult:
    result.status = TaskResultStatus.FAILED
    result.reason_for_incompletion = reason
    result.output_data = {}
    return result


def result_from_error(
    task: Task, exc: BaseException, *, worker_id: str | None = None
) -> TaskResult:
    """The TaskResult for an exception a worker raised.

    Args:
        task: the task the worker ran.
        exc: what it raised.
        worker_id: recorded on the result.

    Returns:
        FAILED_WITH_TERMINAL_ERROR for a NonRetryableError, else FAILED with the
        traceback attached as a task log.
    """
    result = _base(task, worker_id)
    reason = str(exc) or type(exc).__name__
    result.reason_for_incompletion = reason
    result.output_data = {}
    if isinstance(exc, NonRetryableError):
        result.status = TaskResultStatus.FAILED_WITH_TERMINAL_ERROR
        return result
    result.status = TaskResultStatus.FAILED
    trace = "".join(traceback.format_exception(exc))
    result.logs = [TaskExecLogEntry(log=trace, task_id=task.task_id, created_time=_now_ms())]
    return result


# -- the decorator ----------------------------------------------------------------------


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The function's resolved annotations ({} if they cannot be resolved)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an unresolvable forward reference: fall back to no conversion
        return {}


def _wants_task(fn: Callable[..., Any], hints: dict[str, Any]) -> bool:
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 1:
        return False
    annotation = hints.get(params[0].name, params[0].annotation)
    return annotation is Task or annotation in ("Task", "core.models.Task")


def _structured(hint: Any) -> bool:
    """True for parameter types built from a JSON object (dataclass or msgspec Struct)."""
    return isinstance(hint, type) and (
        dataclasses.is_dataclass(hint) or issubclass(hint, msgspec.Struct)
    )


class FunctionWorker:
    """A plain function run as a worker; see `worker()`.

    Attributes:
        fn: the wrapped function.
        task_definition_name: the task type it serves.
        domain: the task domain it polls, or None.
        poll_count: the most tasks it runs at once, or None for the runner's default.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        task_definition_name: str,
        *,
        domain: str | None = None,
        poll_count: int | None = None,
    ) -> None:
        if not task_definition_name:
            raise ValueError("a worker needs a task type: @worker('my_task')")
        signature = inspect.signature(fn)
        if any(p.kind is p.POSITIONAL_ONLY for p in signature.parameters.values()):
            raise ValueError(
                f"worker {task_definition_name!r}: {getattr(fn, '__name__', fn)} has "
                "positional-only parameters; inputs are passed by name, so drop the '/'"
            )
        self.fn = fn
        self.task_definition_name = task_definition_name
        self.domain = domain
        self.poll_count = poll_count
        hints = _hints(fn)
        self._wants_task = _wants_task(fn, hints)
        self._params = [
            p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        # Inputs for dataclass/Struct parameters are converted, as the SDK does.
        self._convert = {
            p.name: hints[p.name] for p in self._params if _structured(hints.get(p.name))
        }
        self._var_kw = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        self.__name__ = getattr(fn, "__name__", task_definition_name)
        self.__doc__ = fn.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<worker {self.task_definition_name!r} -> {self.__name__}>"

    def execute(self, task: Task) -> Any:
        """Run the function for a task (the subclasses say on which side of the loop)."""
        raise NotImplementedError

    def arguments(self, task: Task) -> dict[str, Any]:
        """The keyword arguments the function gets for a task (see the module rules)."""
        data = task.input_data or {}
        if self._wants_task:
            return {self._params[0].name: task}
        kwargs: dict[str, Any] = {}
        for p in self._params:
            if p.name in data:
                kwargs[p.name] = self._converted(p.name, data[p.name])
            else:
                kwargs[p.name] = None if p.default is p.empty else p.default
        if self._var_kw:
            for key, value in data.items():
                kwargs.setdefault(key, value)
        return kwargs

    def _converted(self, name: str, value: Any) -> Any:
        target = self._convert.get(name)
        if target is None:
            return value
        try:
            return msgspec.convert(value, target, from_attributes=True)
        except msgspec.ValidationError as exc:
            # The same input will never fit: fail the task for good, saying why.
            raise NonRetryableError(
                f"input {name!r} does not fit {target.__name__}: {exc}"
            ) from exc


class SyncFunctionWorker(FunctionWorker):
    """A worker around a plain function (the runner calls it on a worker thread)."""

    def execute(self, task: Task) -> Any:
        """Call the function with the task's input."""
        return self.fn(**self.arguments(task))


class AsyncFunctionWorker(FunctionWorker):
    """A worker around a coroutine function (awaited on the trio loop)."""

    async def execute(self, task: Task) -> Any:
        """Await the function with the task's input."""
        result: Awaitable[Any] = self.fn(**self.arguments(task))
        return await result


def worker(
    task_type: str, *, domain: str | None = None, poll_count: int | None = None
) -> Callable[[Callable[..., Any]], FunctionWorker]:
    """Decorator: serve `task_type` with a plain or async function.

    Args:
        task_type: the task definition name to poll for.
        domain: the task domain to poll, if any.
        poll_count: the most tasks of this type to run at once (the runner's default when
            None).

    Returns:
        A decorator giving a `SyncFunctionWorker` or `AsyncFunctionWorker`, which is still
        callable as the original function.
    """

    def wrap(fn: Callable[..., Any]) -> FunctionWorker:
        cls = AsyncFunctionWorker if inspect.iscoroutinefunction(fn) else SyncFunctionWorker
        return cls(fn, task_type, domain=domain, poll_count=poll_count)

    return wrap
