"""Decider and mapping throughput, compiled twin next to pure Python.

Run from the repository root: `python -m bench.decider` (a table) or
`python -m bench.decider --json` (the table, then one JSON object as the last line:
`{"sequential": {"cython": N, "python": N}, "fork50": {...}, "mapping": {...}}`).

Figures (per second; each call is timed on its own, so setup work such as polling is
not counted, and the figure is 1 / median call time, so that a process preempted on a
busy machine does not drag it down; mapping renders are timed in batches of 100):
- sequential: one worker task completion in a 10-step sequential workflow with 3 mapped
  inputs per task; each decision schedules the next task.
- fork50: one branch completion in a 50-way FORK_JOIN, until its JOIN completes.
- mapping: renders of a 5-key template with nested paths.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from types import ModuleType
from typing import Any

import msgspec

from core import decisions as ev
from core.enums import TaskResultStatus
from core.models import TaskDef, Workflow, WorkflowDef
from hotpath import load_twin

ROUNDS = 3
SEQ_WORKFLOWS = 300
FORK_WORKFLOWS = 40
MAPPING_RENDERS = 20000

COMPLETED = TaskResultStatus.COMPLETED


def sequential_def() -> WorkflowDef:
    tasks: list[dict[str, Any]] = []
    for i in range(10):
        prev = f"t{i - 1}" if i else None
        tasks.append(
            {
                "name": f"step_{i}",
                "taskReferenceName": f"t{i}",
                "inputParameters": {
                    "order": "${workflow.input.order}",
                    "amount": f"${{{prev}.output.amount}}" if prev else "${workflow.input.amount}",
                    "region": f"${{{prev}.output.address.region}}"
                    if prev
                    else "${workflow.input.region}",
                },
            }
        )
    return msgspec.convert({"name": "bench_seq", "tasks": tasks}, WorkflowDef)


def fork_def(width: int) -> WorkflowDef:
    branches = [
        [
            {
                "name": "leaf",
                "taskReferenceName": f"b{i}",
                "inputParameters": {"i": i, "order": "${workflow.input.order}"},
            }
        ]
        for i in range(width)
    ]
    tasks = [
        {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": branches},
        {
            "name": "join",
            "taskReferenceName": "join",
            "type": "JOIN",
            "joinOn": [f"b{i}" for i in range(width)],
        },
    ]
    return msgspec.convert({"name": "bench_fork", "tasks": tasks}, WorkflowDef)


ENV = ev.DeciderEnv(task_defs={"step_0": TaskDef(name="step_0")})


def new_workflow(defn: WorkflowDef, n: int) -> Workflow:
    return Workflow(
        workflow_id=f"{n:08x}-bench-4000-8000-{n:012x}",
        workflow_name=defn.name,
        workflow_version=defn.version,
        input={"order": n, "amount": 10, "region": "eu"},
        workflow_definition=defn,
        create_time=1,
    )


def bench_sequential(decider: ModuleType) -> float:
    defn = sequential_def()
    calls: list[float] = []
    output = {"amount": 11, "address": {"region": "eu-west", "zip": "1000"}}
    for _ in range(ROUNDS):
        for n in range(SEQ_WORKFLOWS):
            wf = new_workflow(defn, n)
            decider.decide(wf, ev.StartWorkflow(), ENV, 10)
            for _step in range(10):
                task = wf.tasks[-1]
                decider.decide(wf, ev.TaskPolled(task_id=task.task_id, worker_id="w"), ENV, 20)
                update = ev.TaskUpdate(task_id=task.task_id, status=COMPLETED, output_data=output)
                t0 = time.perf_counter()
                decider.decide(wf, update, ENV, 30)
                calls.append(time.perf_counter() - t0)
            assert wf.status.value == "COMPLETED", wf.status
    return 1.0 / statistics.median(calls)


def bench_fork(decider: ModuleType, width: int = 50) -> float:
    defn = fork_def(width)
    calls: list[float] = []
    for _ in range(ROUNDS):
        for n in range(FORK_WORKFLOWS):
            wf = new_workflow(defn, n)
            decider.decide(wf, ev.StartWorkflow(), ENV, 10)
            leaves = [t for t in wf.tasks if t.task_type == "leaf"]
            for task in leaves:
                decider.decide(wf, ev.TaskPolled(task_id=task.task_id, worker_id="w"), ENV, 20)
            for task in leaves:
                update = ev.TaskUpdate(task_id=task.task_id, status=COMPLETED, output_data={"i": 1})
                t0 = time.perf_counter()
                decider.decide(wf, update, ENV, 30)
                calls.append(time.perf_counter() - t0)
            assert wf.status.value == "COMPLETED", wf.status
    return 1.0 / statistics.median(calls)


def bench_mapping(mapping: ModuleType) -> float:
    template = mapping.compile_template(
        {
            "customer": "${workflow.input.order.customer.name}",
            "first_item": "${fetch.output.items[0].sku}",
            "label": "order ${workflow.input.order.id} for ${fetch.output.shipping.address.city}",
            "total": "${fetch.output.totals.gross}",
            "nested": {"zip": "${fetch.output.shipping.address.zip}"},
        }
    )
    ctx = {
        "workflow": {"input": {"order": {"id": 7, "customer": {"name": "Ada"}}}},
        "fetch": {
            "output": {
                "items": [{"sku": "A-1"}, {"sku": "B-2"}],
                "shipping": {"address": {"city": "Paris", "zip": "75001"}},
                "totals": {"gross": 12.5},
            }
        },
    }
    render = template.render
    batches: list[float] = []
    for _ in range(ROUNDS):
        for _batch in range(MAPPING_RENDERS // 100):
            t0 = time.perf_counter()
            for _i in range(100):
                render(ctx)
            batches.append(time.perf_counter() - t0)
    return 100 / statistics.median(batches)


def measure() -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {"sequential": {}, "fork50": {}, "mapping": {}}
    for label, compiled in (("cython", True), ("python", False)):
        decider = load_twin("decider", compiled=compiled)
        mapping = load_twin("mapping", compiled=compiled)
        gc.collect()
        results["sequential"][label] = bench_sequential(decider)
        results["fork50"][label] = bench_fork(decider)
        results["mapping"][label] = bench_mapping(mapping)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    results = measure()
    print(f"{'figure':<12}{'cython /s':>14}{'python /s':>14}{'ratio':>8}")
    for name, row in results.items():
        ratio = row["cython"] / row["python"] if row["python"] else float("nan")
        print(f"{name:<12}{row['cython']:>14,.0f}{row['python']:>14,.0f}{ratio:>8.2f}")
    if args.json:
        print(json.dumps({k: {t: round(v) for t, v in row.items()} for k, row in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
