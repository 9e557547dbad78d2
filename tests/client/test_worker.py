"""Unit tests: the @worker decorator, argument binding, and outcome -> TaskResult mapping."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import msgspec
import pytest

from client import (
    AsyncFunctionWorker,
    InProgress,
    NonRetryableError,
    SyncFunctionWorker,
    Worker,
    result_from_error,
    result_from_value,
    worker,
)
from client.worker import worker_domain, worker_poll_count
from core import codec
from core.enums import TaskResultStatus, TaskStatus
from core.models import Task, TaskResult


def _task(input_data: dict[str, Any] | None = None) -> Task:
    return Task(
        task_type="t",
        status=TaskStatus.IN_PROGRESS,
        reference_task_name="t_ref",
        task_id="task-1",
        workflow_instance_id="wf-1",
        input_data=input_data or {},
    )


def _wire(result: TaskResult) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(codec.encode(result))
    return doc


def test_dict_return_is_completed_with_that_output() -> None:
    result = result_from_value(_task(), {"y": 2}, worker_id="w1")
    assert _wire(result) == {
        "workflowInstanceId": "wf-1",
        "taskId": "task-1",
        "status": "COMPLETED",
        "outputData": {"y": 2},
        "callbackAfterSeconds": 0,
        "workerId": "w1",
        "logs": [],
        "extendLease": False,
    }


def test_none_is_completed_with_empty_output() -> None:
    result = result_from_value(_task(), None)
    assert result.status is TaskResultStatus.COMPLETED
    assert result.output_data == {}
    assert "workerId" not in _wire(result)


@pytest.mark.parametrize("value", [3, "text", [1, 2], True, 1.5])
def test_other_json_values_are_wrapped_in_result(value: Any) -> None:
    result = result_from_value(_task(), value)
    assert result.status is TaskResultStatus.COMPLETED
    assert result.output_data == {"result": value}


def test_dataclass_return_becomes_a_dict() -> None:
    @dataclasses.dataclass
    class Out:
        a: int
        b: str

    assert result_from_value(_task(), Out(1, "x")).output_data == {"a": 1, "b": "x"}


def test_output_that_is_not_json_fails_the_task_with_the_reason() -> None:
    result = result_from_value(_task(), {"handle": object()})
    assert result.status is TaskResultStatus.FAILED
    assert isinstance(result.reason_for_incompletion, str)
    assert result.reason_for_incompletion.startswith("the worker's output is not JSON")


def test_in_progress_carries_callback_and_output() -> None:
    result = result_from_value(_task(), InProgress(callback_after_seconds=7, output={"pct": 50}))
    wire = _wire(result)
    assert wire["status"] == "IN_PROGRESS"
    assert wire["callbackAfterSeconds"] == 7
    assert wire["outputData"] == {"pct": 50}


def test_in_progress_with_negative_callback_fails() -> None:
    result = result_from_value(_task(), InProgress(callback_after_seconds=-1))
    assert result.status is TaskResultStatus.FAILED
    assert result.reason_for_incompletion == (
        "InProgress.callback_after_seconds must be >= 0, got -1"
    )


def test_task_result_is_sent_for_the_polled_task_with_worker_id_filled() -> None:
    own = TaskResult(
        workflow_instance_id="someone-elses-workflow",
        task_id="someone-elses-task",
        status=TaskResultStatus.FAILED,
        reason_for_incompletion="mine",
    )
    result = result_from_value(_task(), own, worker_id="w9")
    assert result is own
    assert (result.task_id, result.workflow_instance_id) == ("task-1", "wf-1")
    assert result.worker_id == "w9"
    assert result.reason_for_incompletion == "mine"


def test_exception_is_failed_with_reason_and_traceback_log() -> None:
    try:
        raise ValueError("bad input x=1")
    except ValueError as exc:
        result = result_from_error(_task(), exc, worker_id="w1")
    wire = _wire(result)
    assert wire["status"] == "FAILED"
    assert wire["reasonForIncompletion"] == "bad input x=1"
    assert wire["outputData"] == {}
    [entry] = wire["logs"]
    assert entry["taskId"] == "task-1"
    assert "Traceback" in entry["log"]
    assert "ValueError: bad input x=1" in entry["log"]
    assert entry["createdTime"] > 1_600_000_000_000  # epoch milliseconds


def test_exception_without_message_uses_its_class_name() -> None:
    assert result_from_error(_task(), KeyError()).reason_for_incompletion == "KeyError"


def test_non_retryable_error_is_terminal_without_logs() -> None:
    result = result_from_error(_task(), NonRetryableError("card declined"))
    assert result.status is TaskResultStatus.FAILED_WITH_TERMINAL_ERROR
    assert result.reason_for_incompletion == "card declined"
    assert result.logs == []


def test_decorator_binds_input_by_parameter_name() -> None:
    @worker("add")
    def add(a: int, b: int = 10, c: Any = "unset") -> dict[str, Any]:
        return {"sum": a + b, "c": c}

    assert isinstance(add, SyncFunctionWorker)
    assert isinstance(add, Worker)
    assert add.task_definition_name == "add"
    assert add.execute(_task({"a": 1, "b": 2, "extra": 5})) == {"sum": 3, "c": "unset"}
    assert add.execute(_task({"a": 1})) == {"sum": 11, "c": "unset"}
    # still callable as the plain function
    assert add(4, 5) == {"sum": 9, "c": "unset"}


def test_missing_required_input_is_none() -> None:
    @worker("echo")
    def echo(x: Any) -> dict[str, Any]:
        return {"x": x}

    assert echo.execute(_task({})) == {"x": None}


def test_var_keyword_receives_the_rest_of_the_input() -> None:
    @worker("kw")
    def kw(a: int, **rest: Any) -> dict[str, Any]:
        return {"a": a, "rest": rest}

    assert kw.execute(_task({"a": 1, "b": 2, "c": 3})) == {"a": 1, "rest": {"b": 2, "c": 3}}


def test_task_annotated_parameter_gets_the_whole_task() -> None:
    @worker("whole")
    def whole(task: Task) -> dict[str, Any]:
        return {"id": task.task_id, "input": task.input_data}

    assert whole.execute(_task({"q": 1})) == {"id": "task-1", "input": {"q": 1}}


async def test_async_function_becomes_async_worker() -> None:
    @worker("aw", domain="blue", poll_count=3)
    async def aw(n: int) -> dict[str, Any]:
        return {"n2": n * 2}

    assert isinstance(aw, AsyncFunctionWorker)
    assert await aw.execute(_task({"n": 4})) == {"n2": 8}
    assert worker_domain(aw) == "blue"
    assert worker_poll_count(aw, default=9) == 3


def test_poll_count_defaults_and_is_validated() -> None:
    @worker("p")
    def p() -> None:
        return None

    assert worker_poll_count(p, default=5) == 5
    p.poll_count = 0
    with pytest.raises(ValueError, match="poll_count must be a positive int, got 0"):
        worker_poll_count(p, default=5)


def test_decorator_needs_a_task_type() -> None:
    with pytest.raises(ValueError, match="a worker needs a task type"):
        worker("")(lambda: None)


@dataclasses.dataclass
class Order:
    sku: str
    qty: int = 1


class Address(msgspec.Struct):
    city: str


def test_structured_parameters_are_converted_from_input() -> None:
    @worker("ship")
    def ship(order: Order, to: Address, note: str = "") -> dict[str, Any]:
        return {"sku": order.sku, "qty": order.qty, "city": to.city, "note": note}

    out = ship.execute(_task({"order": {"sku": "A7"}, "to": {"city": "Oslo"}}))
    assert out == {"sku": "A7", "qty": 1, "city": "Oslo", "note": ""}


def test_input_that_does_not_fit_its_type_fails_for_good() -> None:
    @worker("ship")
    def ship(order: Order) -> None:
        return None

    with pytest.raises(NonRetryableError) as info:
        ship.execute(_task({"order": {"sku": "A7", "qty": "many"}}))
    assert str(info.value) == (
        "input 'order' does not fit Order: Expected `int`, got `str` - at `$.qty`"
    )
    result = result_from_error(_task(), info.value)
    assert result.status is TaskResultStatus.FAILED_WITH_TERMINAL_ERROR


def test_positional_only_parameters_are_refused_at_decoration() -> None:
    def positional(a: int, /) -> None:
        return None

    with pytest.raises(ValueError) as info:
        worker("p")(positional)
    assert str(info.value) == (
        "worker 'p': positional has positional-only parameters; inputs are passed by name, "
        "so drop the '/'"
    )
