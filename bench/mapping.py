"""Benchmark: render a compiled `${...}` template, compiled twin vs pure-Python twin.

Rules: a script (`python -m bench.mapping`), not a test; it asserts only that both twins
produce the same value, and prints operations per second and the compiled/pure ratio.
The kernel is the project's must-show: a 5-key template with nested paths, at least 5x
faster compiled. Timing takes the best of several repeats to damp noise on a shared box.
"""

from __future__ import annotations

import argparse
import timeit
from typing import Any

from hotpath import load_twin

TEMPLATE: dict[str, Any] = {
    "a": "${workflow.input.x}",
    "b": "prefix-${t1.output.items[2].name}",
    "c": [1, "${t2.output.y}"],
    "d": "${t3.output.deep.er.path}",
    "e": {"k": "${workflow.variables.v}"},
}


def make_context() -> dict[str, Any]:
    """A decider-like context: the workflow plus three task rows."""
    return {
        "workflow": {
            "input": {"x": 42, "other": "ignored"},
            "output": {},
            "status": "RUNNING",
            "workflowId": "wf-1",
            "variables": {"v": "value"},
        },
        "t1": {
            "output": {"items": [{"name": f"item-{i}"} for i in range(5)]},
            "status": "COMPLETED",
        },
        "t2": {"output": {"y": [1, 2, 3]}, "status": "COMPLETED"},
        "t3": {"output": {"deep": {"er": {"path": {"leaf": True}}}}, "status": "COMPLETED"},
        "CPEWF_TASK_ID": "task-1",
    }


def make_timer(compiled: bool) -> tuple[timeit.Timer, Any]:
    """A timer whose loop calls `render(ctx)` directly (no lambda), and one rendered value."""
    module = load_twin("mapping", compiled=compiled)
    template = module.compile_template(TEMPLATE)
    ctx = make_context()
    timer = timeit.Timer("render(ctx)", globals={"render": template.render, "ctx": ctx})
    return timer, template.render(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000, help="renders per repeat")
    parser.add_argument("--repeat", type=int, default=7, help="repeats (best is kept)")
    args = parser.parse_args()

    pure_timer, pure_out = make_timer(compiled=False)
    compiled_timer, compiled_out = make_timer(compiled=True)
    if pure_out != compiled_out:
        raise SystemExit(f"twins disagree: {pure_out!r} != {compiled_out!r}")
    # Interleave the twins so a burst of load from other processes hits both alike.
    pure_best = compiled_best = float("inf")
    for _ in range(args.repeat):
        pure_best = min(pure_best, pure_timer.timeit(args.number))
        compiled_best = min(compiled_best, compiled_timer.timeit(args.number))
    pure_ops = args.number / pure_best
    compiled_ops = args.number / compiled_best
    print(f"template: {TEMPLATE}")
    print(f"pure Python : {pure_ops:12,.0f} renders/s  ({1e6 / pure_ops:.2f} us/render)")
    print(f"compiled    : {compiled_ops:12,.0f} renders/s  ({1e6 / compiled_ops:.2f} us/render)")
    print(f"ratio       : {compiled_ops / pure_ops:.2f}x compiled/pure (target >= 5x)")


if __name__ == "__main__":
    main()
