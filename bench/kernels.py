"""Benchmark kernels: whole workflows driven through one decider twin, with no IO.

Rules: each kernel is a function of a twin module (decider or mapping) that does one
fixed, deterministic piece of work and returns how many decisions (or renders) it made;
the caller times it. Kernels answer the decider's actions the way the engine would
(poll each queued task, complete it, answer a loop condition) but never run a script
engine or a store, so only the hot path is measured. Workload builders come from
bench/decider.py (the decider engineer's figures) so every benchmark measures the same
shapes. Used by bench/conftest.py (pytest-benchmark) and bench/check.py (the CI guard).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import msgspec

from bench.decider import fork_def, new_workflow, sequential_def
from core import decisions as ev
from core.enums import TaskResultStatus
from core.models import TaskDef, WorkflowDef

COMPLETED = TaskResultStatus.COMPLETED
FAILED = TaskResultStatus.FAILED
OUTPUT = {"amount": 11, "address": {"region": "eu-west", "zip": "1000"}}
RETRIES = 5

# A kernel: (twin module) -> number of decisions (or renders) it performed.
Kernel = Callable[[ModuleType], int]


def do_while_def(iterations: int) -> WorkflowDef:
    """A DO_WHILE of one mapped SIMPLE task; the kernel answers the condition itself."""
    body = {
        "name": "body",
        "taskReferenceName": "body",
        "inputParameters": {"i": "${loop.output.iteration}", "order": "${workflow.input.order}"},
    }
    loop = {
        "name": "loop",
        "taskReferenceName": "loop",
        "type": "DO_WHILE",
        "loopCondition": f"$.loop['iteration'] < {iterations}",
        "loopOver": [body],
    }
    return msgspec.convert({"name": "bench_do_while", "tasks": [loop]}, WorkflowDef)


def retry_def() -> WorkflowDef:
    """One SIMPLE task whose TaskDef allows RETRIES immediate retries."""
    task = {"name": "flaky", "taskReferenceName": "flaky", "inputParameters": {"n": 1}}
    return msgspec.convert({"name": "bench_retry", "tasks": [task]}, WorkflowDef)


RETRY_ENV = ev.DeciderEnv(
    task_defs={"flaky": TaskDef(name="flaky", retry_count=RETRIES, retry_delay_seconds=0)}
)
ENV = ev.DeciderEnv()


def _poll_and_finish(
    decider: ModuleType, wf: Any, env: Any, status: TaskResultStatus = COMPLETED
) -> int:
    """Polls and completes (or fails) every SCHEDULED worker task; returns decisions made."""
    decisions = 0
    for task in [t for t in wf.tasks if t.status.value == "SCHEDULED"]:
        decider.decide(wf, ev.TaskPolled(task_id=task.task_id, worker_id="w"), env, 20)
        decider.decide(
            wf, ev.TaskUpdate(task_id=task.task_id, status=status, output_data=OUTPUT), env, 30
        )
        decisions += 2
    return decisions


def _check(wf: Any, expected: str = "COMPLETED") -> None:
    # A kernel that silently stopped doing its work would look fast: fail it instead.
    if wf.status.value != expected:
        raise AssertionError(f"benchmark workflow ended {wf.status.value}, expected {expected}")


def sequential(workflows: int) -> Kernel:
    """`workflows` 10-step sequential workflows, each task polled and completed."""
    defn = sequential_def()

    def run(decider: ModuleType) -> int:
        decisions = 0
        for n in range(workflows):
            wf = new_workflow(defn, n)
            decider.decide(wf, ev.StartWorkflow(), ENV, 10)
            decisions += 1
            while wf.status.value == "RUNNING":
                decisions += _poll_and_finish(decider, wf, ENV)
            _check(wf)
        return decisions

    return run


def fork(width: int, workflows: int = 1) -> Kernel:
    """A FORK_JOIN of `width` SIMPLE branches and its JOIN, run to completion."""
    defn = fork_def(width)

    def run(decider: ModuleType) -> int:
        decisions = 0
        for n in range(workflows):
            wf = new_workflow(defn, n)
            decider.decide(wf, ev.StartWorkflow(), ENV, 10)
            decisions += 1 + _poll_and_finish(decider, wf, ENV)
            _check(wf)
        return decisions

    return run


def do_while(iterations: int) -> Kernel:
    """One DO_WHILE run for `iterations` iterations; conditions answered without a script."""
    defn = do_while_def(iterations)

    def run(decider: ModuleType) -> int:
        wf = new_workflow(defn, 0)
        decision = decider.decide(wf, ev.StartWorkflow(), ENV, 10)
        decisions = 1
        for _guard in range(4 * iterations + 4):
            if wf.status.value != "RUNNING":
                break
            scripts = [a for a in decision.actions if type(a) is ev.EvaluateScript]
            if scripts:
                loop_row = next(t for t in wf.tasks if t.task_id == scripts[0].task_id)
                again = int(loop_row.output_data.get("iteration", 0)) < iterations
                result = ev.ScriptResult(task_id=scripts[0].task_id, value=again)
                decision = decider.decide(wf, result, ENV, 40)
                decisions += 1
                continue
            task = next(t for t in wf.tasks if t.status.value == "SCHEDULED")
            decider.decide(wf, ev.TaskPolled(task_id=task.task_id, worker_id="w"), ENV, 20)
            update = ev.TaskUpdate(task_id=task.task_id, status=COMPLETED, output_data=OUTPUT)
            decision = decider.decide(wf, update, ENV, 30)
            decisions += 2
        _check(wf)
        if sum(t.task_type == "body" for t in wf.tasks) != iterations:
            raise AssertionError("the DO_WHILE kernel ran the wrong number of iterations")
        return decisions

    return run


def retry(workflows: int = 1) -> Kernel:
    """A task failed RETRIES times (each failure schedules a retry), then completed."""
    defn = retry_def()

    def run(decider: ModuleType) -> int:
        decisions = 0
        for n in range(workflows):
            wf = new_workflow(defn, n)
            decider.decide(wf, ev.StartWorkflow(), RETRY_ENV, 10)
            decisions += 1
            for _attempt in range(RETRIES):
                decisions += _poll_and_finish(decider, wf, RETRY_ENV, FAILED)
            decisions += _poll_and_finish(decider, wf, RETRY_ENV)
            _check(wf)
            if len(wf.tasks) != RETRIES + 1:
                raise AssertionError(f"expected {RETRIES + 1} attempts, got {len(wf.tasks)}")
        return decisions

    return run


MAPPING_TEMPLATE: dict[str, Any] = {
    "customer": "${workflow.input.order.customer.name}",
    "first_item": "${fetch.output.items[0].sku}",
    "label": "order ${workflow.input.order.id} for ${fetch.output.shipping.address.city}",
    "total": "${fetch.output.totals.gross}",
    "nested": {"zip": "${fetch.output.shipping.address.zip}"},
}


def mapping_context() -> dict[str, Any]:
    """The render context; task payloads JSON-decoded as in production (keys not interned)."""
    fetch_output = msgspec.json.decode(
        b'{"items": [{"sku": "A-1"}, {"sku": "B-2"}],'
        b' "shipping": {"address": {"city": "Paris", "zip": "75001"}},'
        b' "totals": {"gross": 12.5}}'
    )
    order = msgspec.json.decode(b'{"id": 7, "customer": {"name": "Ada"}}')
    return {"workflow": {"input": {"order": order}}, "fetch": {"output": fetch_output}}


def mapping(renders: int) -> Kernel:
    """`renders` renders of a compiled 5-key template with nested paths."""
    context = mapping_context()

    def run(mapping_twin: ModuleType) -> int:
        render = mapping_twin.compile_template(MAPPING_TEMPLATE).render
        expected = {
            "customer": "Ada",
            "first_item": "A-1",
            "label": "order 7 for Paris",
            "total": 12.5,
            "nested": {"zip": "75001"},
        }
        if render(context) != expected:
            raise AssertionError("the mapping kernel rendered a wrong value")
        for _ in range(renders):
            render(context)
        return renders

    return run
