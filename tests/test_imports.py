"""The layering rule, enforced: core < hotpath < server, IO only in server/.

Each package is imported in a fresh interpreter and `sys.modules` is inspected, so a
stray import anywhere in the package's import graph fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO_MODULES = ("trio", "asyncio", "redis", "asyncpg", "httpx", "socket", "sqlite3")


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = (
        "import json, sys\n"
        f"for name in {modules!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def _top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize(
    "package",
    [
        "core",
        "core.models",
        "core.codec",
        "core.validation",
        "core.search",
        "core.store",
        "core.decisions",
    ],
)
def test_core_imports_no_io_and_no_upper_layer(package: str) -> None:
    loaded = _top_level(_loaded_after_import([package]))
    assert not loaded & {"hotpath", "server", "client"}, f"{package} reaches an upper layer"
    assert not loaded & set(IO_MODULES), f"{package} imports IO: {loaded & set(IO_MODULES)}"


@pytest.mark.parametrize("package", ["hotpath", "hotpath.decider", "hotpath.mapping"])
def test_hotpath_imports_no_io_and_no_server(package: str) -> None:
    loaded = _top_level(_loaded_after_import([package]))
    assert "server" not in loaded
    assert "client" not in loaded
    assert not loaded & set(IO_MODULES), f"{package} imports IO: {loaded & set(IO_MODULES)}"


def test_asyncio_stays_inside_the_store_adapters() -> None:
    # The engine, the API and the HTTP layer run on trio only; asyncio arrives solely with
    # the Redis/PostgreSQL adapters (and their sidecar bridge).
    loaded = _loaded_after_import(
        ["server.engine", "server.api", "server.http", "server.app", "server.stores.sqlite"]
    )
    assert "trio" in loaded
    assert "asyncio" not in loaded, "asyncio imported outside server/stores/{bridge,redis,postgres}"
