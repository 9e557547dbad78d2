"""Smoke test of the load harness: `python -m bench.load` against a server it starts.

Rules: a tiny run (20 workflows); asserts the JSON report's shape and that every
workflow and worker task completed. Timings are printed by the harness, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_load_harness_runs_sequential_5_to_completion() -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.load", "--workflows", "20"),
            *("--workload", "sequential-5", "--json", "--no-progress", "--timeout", "60"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["workload"] == "sequential-5"
    assert report["workflows"] == 20
    assert report["failed"] == 0
    assert report["worker_tasks"] == 100  # 5 SIMPLE tasks each, every one dispatched once
    assert report["store"] == "sqlite"
    assert report["workflows_per_s"] > 0
    assert report["tasks_per_s"] == pytest.approx(5 * report["workflows_per_s"], rel=0.01)
    for key in ("p50", "p95", "p99"):
        assert report["latency_ms"][key] > 0
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    assert report["dispatch_ms"]["p50"] <= report["dispatch_ms"]["p99"]
    assert report["server_rss_mb"] > 0


def test_podium_load_outside_a_checkout_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from server import cli, cli_load

    monkeypatch.setattr(cli_load, "find_bench", lambda: None)
    assert cli.main(["load", "--workflows", "5"]) == 1
    assert "run it from a checkout's root" in capsys.readouterr().err


def test_podium_load_help_lists_the_harness_options(capsys: pytest.CaptureFixture[str]) -> None:
    from server import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["load", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--workload", "--workflows", "--rate", "--sdk", "--hold", "--store"):
        assert option in out


def test_workload_names_match_the_harness() -> None:
    from bench.load_workloads import WORKLOADS
    from server.cli_load import WORKLOAD_NAMES

    assert sorted(WORKLOAD_NAMES) == sorted(WORKLOADS)
