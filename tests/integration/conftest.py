"""Integration fixtures: a real `podium server` subprocess, a loopback HTTP endpoint, and
the official conductor-python SDK pointed at the server.

Rules: one server per session (tests use distinct workflow and task names, so they do
not see each other's work); it listens on a free loopback port (`--port 0`, the port is
read from its start-up log line) with a SQLite store in a temp folder, and the fixture
waits for `/health`. At the end it is stopped with SIGTERM and must exit 0 (graceful
shutdown). Worker processes of the SDK find the server through CONDUCTOR_SERVER_URL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

STARTUP_TIMEOUT_S = 30.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test here starts or talks to server processes: `-m "not slow"` skips them.
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)


_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+) ")


@dataclass(frozen=True)
class PodiumServer:
    """A running server: its URLs, log file and process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_for_port(proc: subprocess.Popen[bytes], log_path: Path) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            pytest.fail(f"podium server exited with {proc.returncode}:\n{log_path.read_text()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"podium server did not start in {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()}")


def _wait_healthy(base_url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{base_url}/health never answered 200")


@pytest.fixture(scope="session")
def podium_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodiumServer]:
    """`podium server` on a free loopback port with a fresh SQLite store."""
    folder = tmp_path_factory.mktemp("podium")
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "podium"),
                "server",
                "--port",
                "0",
                "--store",
                f"sqlite:///{folder / 'db' / 'podium.db'}",
            ],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        port = _wait_for_port(proc, log_path)
        server = PodiumServer(f"http://127.0.0.1:{port}", proc, log_path)
        _wait_healthy(server.base_url)
        previous = os.environ.get("CONDUCTOR_SERVER_URL")
        # SDK worker processes (and the SDK's stray default clients) read this.
        os.environ["CONDUCTOR_SERVER_URL"] = server.api_url
        yield server
        if previous is None:
            os.environ.pop("CONDUCTOR_SERVER_URL", None)
        else:
            os.environ["CONDUCTOR_SERVER_URL"] = previous
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"podium server ignored SIGTERM:\n{log_path.read_text()}")
    assert proc.returncode == 0, f"podium server exited {proc.returncode}:\n{log_path.read_text()}"
    assert "store closed" in log_path.read_text()


@pytest.fixture
def api(podium_server: PodiumServer) -> Iterator[httpx.Client]:
    """A plain HTTP client on the server's root (the SDK's headers: JSON everywhere)."""
    with httpx.Client(
        base_url=podium_server.base_url,
        headers={"Content-Type": "application/json"},
        timeout=30,
    ) as client:
        yield client


# ---------------------------------------------------------------------------- loopback HTTP


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers JSON describing the request; `/search` answers an Elasticsearch-like hit
    list (what the kitchensink's HTTP task expects); `/status/<n>` answers status n."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.startswith("/status/"):
            status = int(self.path.rsplit("/", 1)[1])
            body: Any = {"error": f"asked for {status}"}
        elif self.path.startswith("/search"):
            status = 200
            body = {
                "hits": {
                    "hits": [
                        {"_source": {"workflowId": "wf-1", "status": "COMPLETED"}},
                        {"_source": {"workflowId": "wf-2", "status": "FAILED"}},
                    ]
                }
            }
        else:
            status = 200
            body = {
                "method": self.command,
                "path": self.path,
                "body": json.loads(raw) if raw else None,
                "header": self.headers.get("x-podium-test"),
            }
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def echo_url() -> Iterator[str]:
    """A real loopback HTTP endpoint for HTTP tasks."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---------------------------------------------------------------------------- the SDK


@dataclass(frozen=True)
class Sdk:
    """The official SDK's clients, configured for the test server."""

    configuration: Any
    metadata: Any
    workflows: Any
    tasks: Any
    executor: Any


@pytest.fixture(scope="session")
def sdk(podium_server: PodiumServer) -> Sdk:
    from conductor.client.configuration.configuration import Configuration
    from conductor.client.orkes_clients import OrkesClients

    configuration = Configuration(server_api_url=podium_server.api_url)
    clients = OrkesClients(configuration)
    return Sdk(
        configuration=configuration,
        metadata=clients.get_metadata_client(),
        workflows=clients.get_workflow_client(),
        tasks=clients.get_task_client(),
        executor=clients.get_workflow_executor(),
    )


WORKER_TASKS = {
    "it_add": "add",
    "it_square": "square",
    "it_fanout": "fanout",
    "it_flaky": "flaky",
    "it_progress": "slow_progress",
}


@pytest.fixture(scope="session")
def sdk_workers(sdk: Sdk) -> Iterator[None]:
    """The SDK's TaskHandler running every worker of tests/integration/sdk_workers.py,
    one spawned process each (the SDK's default), for the whole session."""
    from conductor.client.automator.task_handler import TaskHandler
    from conductor.client.http.models.task_def import TaskDef
    from conductor.client.worker.worker import Worker

    from tests.integration import sdk_workers as functions

    for name in WORKER_TASKS:
        sdk.metadata.register_task_def(
            TaskDef(
                name=name,
                retry_count=3,
                retry_delay_seconds=0,
                timeout_seconds=60,
                response_timeout_seconds=30,
                owner_email="it@example.com",
            )
        )
    workers = [
        Worker(
            task_definition_name=name,
            execute_function=getattr(functions, attr),
            poll_interval=50,
            worker_id=f"it-{name}",
        )
        for name, attr in WORKER_TASKS.items()
    ]
    handler = TaskHandler(
        workers=workers,
        configuration=sdk.configuration,
        scan_for_annotated_workers=False,
        monitor_processes=False,
    )
    handler.start_processes()
    try:
        yield
    finally:
        handler.stop_processes()
