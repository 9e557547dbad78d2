"""`podium server` as a process: start-up line, loopback binding, health/version/metrics/
OpenAPI, and graceful shutdown on SIGTERM with a request in flight."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.integration.conftest import PodiumServer, _wait_for_port, _wait_healthy


def _start(folder: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "podium"), "server", "--port", "0", *extra],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return proc, log_path


def test_default_store_binding_and_graceful_shutdown(tmp_path: Path) -> None:
    proc, log_path = _start(tmp_path, "--samples")
    try:
        port = _wait_for_port(proc, log_path)
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base)
        line = next(x for x in log_path.read_text().splitlines() if "listening on" in x)
        assert "store sqlite:///./.podium/podium.db" in line
        assert "hotpath " in line
        assert (tmp_path / ".podium" / "podium.db").exists()  # the folder was created

        # A long poll in flight when SIGTERM arrives still gets its answer.
        answers: list[httpx.Response] = []

        def long_poll() -> None:
            answers.append(
                httpx.get(f"{base}/api/tasks/poll/batch/it_nothing?timeout=1500", timeout=10)
            )

        poller = threading.Thread(target=long_poll)
        poller.start()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        poller.join(timeout=10)
        assert proc.wait(timeout=15) == 0
        assert [r.status_code for r in answers] == [200]
        assert answers[0].json() == []
        text = log_path.read_text()
        assert "SIGTERM received" in text
        assert "store closed" in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_store_url_is_a_clear_startup_error(tmp_path: Path) -> None:
    proc, log_path = _start(tmp_path, "--store", "mongodb://x")
    assert proc.wait(timeout=30) == 1
    assert "unknown store URL 'mongodb://x'" in log_path.read_text()


def test_health_version_metrics_and_openapi(podium_server: PodiumServer, api: httpx.Client) -> None:
    for path in ("/health", "/api/health"):
        body = api.get(path).json()
        assert body["healthy"] is True
    version = api.get("/api/version")
    assert version.headers["content-type"].startswith("text/plain")
    assert version.text == "0.1.0"
    config = api.get("/api/admin/config").json()
    assert config["store"].startswith("sqlite:///")

    api.put(
        "/api/metadata/workflow",
        json=[{"name": "it_metrics", "tasks": [{"name": "it_m", "taskReferenceName": "m"}]}],
    )
    workflow_id = api.post("/api/workflow/it_metrics", json={}).text
    assert api.get("/api/tasks/queue/all").json()["it_m"] == 1
    metrics = api.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert 'podium_workflow_starts_total{workflow="it_metrics"} 1' in text
    assert 'podium_queue_depth{queue="it_m"} 1' in text
    assert 'podium_workflows{status="RUNNING"}' in text
    polled = api.get("/api/tasks/poll/it_m?workerid=w1").json()
    assert polled["workflowInstanceId"] == workflow_id
    api.post(
        "/api/tasks",
        json={
            "taskId": polled["taskId"],
            "workflowInstanceId": workflow_id,
            "status": "COMPLETED",
        },
    )
    text = api.get("/metrics").text
    assert 'podium_tasks_polled_total{task_type="it_m"} 1' in text
    assert 'podium_task_updates_total{status="COMPLETED"}' in text
    assert 'podium_poll_seconds_count{task_type="it_m"} 1' in text
    poll_data = api.get("/api/tasks/queue/polldata?taskType=it_m").json()
    assert [(p["queueName"], p["workerId"]) for p in poll_data] == [("it_m", "w1")]

    document = api.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert "/api/workflow/{workflowId}" in document["paths"]
    assert api.get("/api-docs").json() == document
