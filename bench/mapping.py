"""Benchmark: render a compiled `${...}` template, compiled twin vs pure-Python twin.

Rules: a script (`python -m bench.mapping`), not a test; it checks only that both twins
produce the same value, and prints renders per second and the compiled/pure ratio.
The kernel is the project's must-show: a 5-key template with nested paths, at least 5x
faster compiled. Each context is measured twice over:
- "decider": structural keys (`workflow`, `input`, `output`, ...) are string literals, as
  the decider writes them, and the task payloads are decoded from JSON by msgspec (their
  keys are not interned, so dict lookups compare characters, as in production);
- "literal": the whole context written as Python literals (every key interned).
Timing uses CPU time (`time.process_time`), interleaves the twins and keeps the best of
several repeats, so load from other processes on a shared machine skews both alike.
"""

from __future__ import annotations

import argparse
import time
import timeit
from typing import Any

import msgspec

from hotpath import load_twin

TEMPLATE: dict[str, Any] = {
    "a": "${workflow.input.x}",
    "b": "prefix-${t1.output.items[2].name}",
    "c": [1, "${t2.output.y}"],
    "d": "${t3.output.deep.er.path}",
    "e": {"k": "${workflow.variables.v}"},
}

PAYLOADS: dict[str, Any] = {
    "workflow.input": {"x": 42, "other": "ignored"},
    "workflow.variables": {"v": "value"},
    "t1.output": {"items": [{"name": f"item-{i}"} for i in range(5)]},
    "t2.output": {"y": [1, 2, 3]},
    "t3.output": {"deep": {"er": {"path": {"leaf": True}}}},
}


def make_context(*, decoded: bool) -> dict[str, Any]:
    """The workflow plus three task rows; payloads JSON-decoded when `decoded`."""

    def payload(name: str) -> Any:
        value = PAYLOADS[name]
        return msgspec.json.decode(msgspec.json.encode(value)) if decoded else value

    return {
        "workflow": {
            "input": payload("workflow.input"),
            "output": {},
            "status": "RUNNING",
            "workflowId": "wf-1",
            "variables": payload("workflow.variables"),
        },
        "t1": {"output": payload("t1.output"), "status": "COMPLETED"},
        "t2": {"output": payload("t2.output"), "status": "COMPLETED"},
        "t3": {"output": payload("t3.output"), "status": "COMPLETED"},
        "CPEWF_TASK_ID": "task-1",
    }


def make_timer(compiled: bool, ctx: dict[str, Any]) -> tuple[timeit.Timer, Any]:
    """A timer whose loop calls `render(ctx)` directly (no lambda), and one rendered value."""
    module = load_twin("mapping", compiled=compiled)
    template = module.compile_template(TEMPLATE)
    timer = timeit.Timer(
        "render(ctx)",
        globals={"render": template.render, "ctx": ctx},
        timer=time.process_time,
    )
    return timer, template.render(ctx)


def measure(name: str, ctx: dict[str, Any], number: int, repeat: int) -> float:
    """Print one comparison; returns the compiled/pure ratio."""
    pure_timer, pure_out = make_timer(False, ctx)
    compiled_timer, compiled_out = make_timer(True, ctx)
    if repr(pure_out) != repr(compiled_out):
        raise SystemExit(f"twins disagree: {pure_out!r} != {compiled_out!r}")
    pure_best = compiled_best = float("inf")
    for _ in range(repeat):
        pure_best = min(pure_best, pure_timer.timeit(number // 4) * 4)
        compiled_best = min(compiled_best, compiled_timer.timeit(number))
    pure_ops = number / pure_best
    compiled_ops = number / compiled_best
    ratio = compiled_ops / pure_ops
    print(f"[{name} context]")
    print(f"  pure Python : {pure_ops:12,.0f} renders/s  ({1e6 / pure_ops:.3f} us/render)")
    print(f"  compiled    : {compiled_ops:12,.0f} renders/s  ({1e6 / compiled_ops:.3f} us/render)")
    print(f"  ratio       : {ratio:.2f}x compiled/pure")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000, help="compiled renders per repeat")
    parser.add_argument("--repeat", type=int, default=15, help="repeats (the best is kept)")
    args = parser.parse_args()
    print(f"template: {TEMPLATE}")
    ratios = [
        measure("decider", make_context(decoded=True), args.number, args.repeat),
        measure("literal", make_context(decoded=False), args.number, args.repeat),
    ]
    verdict = "meets" if min(ratios) >= 5.0 else "MISSES"
    print(f"lowest ratio {min(ratios):.2f}x: {verdict} the 5x target")


if __name__ == "__main__":
    main()
