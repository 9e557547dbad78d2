"""Shared fixtures: hot-path twins, real services, the shared/ reference folder.

Rules: a test that needs Redis, PostgreSQL or ../shared skips with a reason when it is
missing, except under CI=true, where a missing dependency is a failure. Subdirectories
keep their own fixtures in their own conftest.py.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

import pytest

import hotpath
from server.engine.workflow_cache import WorkflowCache

# Every use of a cached committed workflow checks it still encodes to its committed body,
# so a decide that edits shared state in place fails the test that caused it.
WorkflowCache.verify = True

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PODIUM_SHARED_DIR", REPO.parent / "shared"))

REDIS_URL = os.environ.get("PODIUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get(
    "PODIUM_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-extensions",
        action="store_true",
        help="drop the compiled hot-path parameter (run only the pure-Python twin)",
    )


def missing(reason: str) -> None:
    """Skip, or fail under CI=true, because a dependency of the test is absent."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing dependency is a failure)")
    pytest.skip(reason)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _reachable(REDIS_URL, 6379):
        missing(f"Redis is not reachable at {REDIS_URL} (set PODIUM_TEST_REDIS_URL)")
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    if not _reachable(POSTGRES_DSN, 5432):
        missing(f"PostgreSQL is not reachable at {POSTGRES_DSN} (set PODIUM_TEST_POSTGRES_DSN)")
    return POSTGRES_DSN


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (Conductor's reference samples); absent for users, present in CI."""
    if not (SHARED / "conductor-samples").is_dir():
        missing(f"the shared reference folder is absent at {SHARED}")
    return SHARED


def _impl_params(config: pytest.Config) -> list[object]:
    if hotpath.PURE_PYTHON or config.getoption("--no-extensions"):
        return ["python"]
    return [pytest.param("cython", marks=pytest.mark.compiled), "python"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # `hotpath_impl` runs a test once per twin: compiled and pure Python side by side.
    if "hotpath_impl" in metafunc.fixturenames:
        metafunc.parametrize("hotpath_impl", _impl_params(metafunc.config), scope="session")


@pytest.fixture(scope="session")
def twin(hotpath_impl: str) -> TwinLoader:
    return TwinLoader(hotpath_impl == "cython")


class TwinLoader:
    """Loads `hotpath.<stem>_c` or `_py` for the implementation under test."""

    def __init__(self, compiled: bool) -> None:
        self.compiled = compiled

    def __call__(self, stem: str) -> ModuleType:
        return hotpath.load_twin(stem, compiled=self.compiled)
