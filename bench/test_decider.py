"""Decider benchmarks, compiled and pure Python side by side (one table per workload).

Rules: each round runs a whole workflow (or a batch) through bench/kernels.py; the
figure to read is the ratio of the two rows in a table, not the absolute time.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from bench import kernels


def _run(benchmark: Any, group: str, kernel: kernels.Kernel, twin: ModuleType) -> None:
    benchmark.group = group
    decisions = benchmark(kernel, twin)
    benchmark.extra_info["decisions"] = decisions
    assert decisions > 0


def test_sequential_step(benchmark: Any, decider_twin: ModuleType) -> None:
    """20 ten-step sequential workflows: start, then poll + complete each task."""
    _run(benchmark, "decider: sequential 20 x 10 steps", kernels.sequential(20), decider_twin)


@pytest.mark.parametrize("width", [10, 100, 1000])
def test_fork_fan_out(benchmark: Any, decider_twin: ModuleType, width: int) -> None:
    """A FORK_JOIN of `width` branches: fan out, complete every branch, JOIN."""
    _run(benchmark, f"decider: fork/join {width}", kernels.fork(width), decider_twin)


def test_do_while_iterations(benchmark: Any, decider_twin: ModuleType) -> None:
    """A DO_WHILE of one task, 20 iterations (conditions answered without a script)."""
    _run(benchmark, "decider: DO_WHILE x 20", kernels.do_while(20), decider_twin)


def test_retry(benchmark: Any, decider_twin: ModuleType) -> None:
    """A task failed 5 times (each failure schedules a retry), then completed."""
    _run(benchmark, "decider: retry x 5", kernels.retry(), decider_twin)
