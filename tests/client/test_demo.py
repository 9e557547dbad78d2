"""`podium demo` as a user runs it: a subprocess that starts its own server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from client.sample_workers import expected_kitchensink_output
from tests.client.conftest import PodiumServer

pytestmark = pytest.mark.slow

PODIUM = str(Path(sys.executable).parent / "podium")


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PODIUM, "demo", *args], capture_output=True, text=True, timeout=180, check=False
    )


def test_demo_starts_a_server_and_completes_the_kitchensink() -> None:
    done = _demo()
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "podium demo: started a podium server at http://127.0.0.1:" in out
    assert "registered 8 task and 2 workflow definitions (0 and 0 were there)" in out
    assert out.rstrip().endswith("status: COMPLETED")
    expected = expected_kitchensink_output()
    assert f'"fanoutTotal": {expected["fanoutTotal"]}' in out
    assert '"foundItself": true' in out
    for ref in ("announce", "fanout_join", "sub_a", "sub_b", "tick__3", "search", "settle"):
        assert any(line.split()[:1] == [ref] and "COMPLETED" in line for line in out.splitlines())
    assert "stop_early" not in out  # the TERMINATE branch is the one not taken


def test_demo_against_a_running_server_registers_only_what_is_missing(
    podium_server: PodiumServer,
) -> None:
    first = _demo("--server", podium_server.base_url, "--mod", "4")
    second = _demo("--server", podium_server.api_url, "--mod", "4")  # the /api form too
    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "started a podium server" not in first.stdout
    assert "registered 8 task and 2 workflow definitions (0 and 0 were there)" in first.stdout
    assert "registered 0 task and 0 workflow definitions (8 and 2 were there)" in second.stdout
    assert '"label": "even"' in second.stdout


def test_demo_reports_an_unreachable_server() -> None:
    done = _demo("--server", "http://127.0.0.1:9", "--timeout", "5")
    assert done.returncode == 1
    assert done.stderr.startswith("podium demo: cannot use the server at http://127.0.0.1:9:")


def test_demo_refuses_a_url_without_scheme() -> None:
    done = _demo("--server", "127.0.0.1:8080")
    assert done.returncode == 1
    assert done.stderr == (
        "podium demo: server URL '127.0.0.1:8080' must start with http:// or https://, "
        "e.g. http://127.0.0.1:8080\n"
    )
