"""Script evaluation costs: warm JavaScript evaluations, a fresh context, jq runs.

Run: `python -m bench.scripting [--seconds S]`. Prints the median of five samples per
case, in microseconds per operation, as wall time and as this process's CPU time. Each
sample runs the case repeatedly for about S/5 seconds on the current thread (the
JavaScript context is per thread, so after the first call every evaluation is warm). On a
shared machine the wall figure grows with the load average (printed before and after);
the CPU figure is the steadier one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import jq as libjq
import quickjs

from server.scripting import evaluate_js, evaluate_lambda, run_jq
from server.scripting.js import _Engine

_SMALL = {"a": 3}
_DOC = {"a": [{"x": 1, "y": "p"}, {"x": 2, "y": "q"}, {"x": 3, "y": "r"}]}
_BIG = {"items": [{"id": i, "name": f"item-{i}", "tags": ["a", "b"]} for i in range(100)]}


def _per_op_us(fn: Callable[[], Any], seconds: float) -> tuple[float, float]:
    """Median (wall, CPU) microseconds per call over five samples."""
    wall_samples = []
    cpu_samples = []
    for _ in range(5):
        count = 0
        started = time.perf_counter()
        cpu_started = time.process_time()
        deadline = started + seconds / 5
        while True:
            for _ in range(20):
                fn()
            count += 20
            now = time.perf_counter()
            if now >= deadline:
                break
        wall_samples.append((now - started) / count * 1e6)
        cpu_samples.append((time.process_time() - cpu_started) / count * 1e6)
    return statistics.median(wall_samples), statistics.median(cpu_samples)


def _load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def _raw_quickjs() -> Callable[[], Any]:
    # The floor: one pre-built context, no bindings, no JSON out.
    context = quickjs.Context()
    return lambda: context.eval("1")


def _cases() -> list[tuple[str, Callable[[], Any]]]:
    stack_notes = "function e() { if ($.a > 1) return {r: $.a * 2}; return null; } e();"
    loop_condition = "if ( $.loop.iteration < 3 ) { true; } else { false; }"
    compiled = libjq.compile(".a | map(.x)")
    return [
        ("quickjs floor: ctx.eval('1')", _raw_quickjs()),
        ("evaluate_js stack-notes script {a:3}", lambda: evaluate_js(stack_notes, _SMALL)),
        (
            "evaluate_js SDK loop condition",
            lambda: evaluate_js(loop_condition, {"loop": {"iteration": 1}}),
        ),
        ("evaluate_js $.items.size() (100 objects)", lambda: evaluate_js("$.items.size()", _BIG)),
        ("evaluate_js return $ (100 objects)", lambda: evaluate_js("$", _BIG)),
        ("evaluate_lambda return {r: $.a}", lambda: evaluate_lambda("return {r: $.a};", _SMALL)),
        ("new per-thread context (prelude included)", _Engine),
        ("run_jq '.a | map(.x)' (cached)", lambda: run_jq(".a | map(.x)", _DOC)),
        ("run_jq '.items[] | .id' (100 results)", lambda: run_jq(".items[] | .id", _BIG)),
        ("jq package floor: input_value().first()", lambda: compiled.input_value(_DOC).first()),
        ("jq compile (uncached)", lambda: libjq.compile(".a | map(.x)")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per case")
    args = parser.parse_args()
    print(f"load average before: {_load_average()}")
    print(f"{'case':52s} {'wall us':>10s} {'cpu us':>10s}")
    for name, fn in _cases():
        fn()  # warm: builds this thread's context, fills the jq cache
        wall, cpu = _per_op_us(fn, args.seconds)
        print(f"{name:52s} {wall:10.1f} {cpu:10.1f}")
    print(f"load average after: {_load_average()}")


if __name__ == "__main__":
    main()
