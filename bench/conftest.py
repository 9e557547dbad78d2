"""pytest-benchmark fixtures: both hot-path twins in one run, and the workload builders.

Rules: `make bench` runs `pytest bench --benchmark-only`; bench/ is not in testpaths, so
`make test` never times anything. A benchmark that takes `hotpath_impl` runs once per
twin ("cython" and "python") and names its group without the twin, so each table in
the report holds the compiled and the pure-Python rows side by side. Benchmarks whose
work does not touch the hot path (codec, stores) run once. Kernels check their own
results (bench/kernels.py), so a benchmark that stopped doing its work fails.
"""

from __future__ import annotations

from types import ModuleType

import pytest

import hotpath
from bench import kernels

__all__ = ["kernels"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hotpath_impl" in metafunc.fixturenames:
        impls = ["python"] if hotpath.PURE_PYTHON else ["cython", "python"]
        metafunc.parametrize("hotpath_impl", impls, scope="session")


@pytest.fixture(scope="session")
def decider_twin(hotpath_impl: str) -> ModuleType:
    """The decider twin under measurement."""
    return hotpath.load_twin("decider", compiled=hotpath_impl == "cython")


@pytest.fixture(scope="session")
def mapping_twin(hotpath_impl: str) -> ModuleType:
    """The mapping twin under measurement."""
    return hotpath.load_twin("mapping", compiled=hotpath_impl == "cython")
