"""Smoke tests of the load harness: `python -m bench.load` against a server it starts.

Rules: tiny runs (20 workflows; 30 held with `--hold`, SQLite); assert the JSON report's
shape and that every workflow and worker task completed (every held workflow released
and ended COMPLETED). Timings, rates and CPU figures are printed by the harness, never
asserted beyond being present.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run_harness(*args: str) -> dict[str, Any]:
    """Run `python -m bench.load ARGS --json --no-progress --timeout 60`; its JSON report."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", *args, "--json", "--no-progress", "--timeout", "60"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.slow
def test_load_harness_runs_sequential_5_to_completion() -> None:
    report = _run_harness("--workflows", "20", "--workload", "sequential-5")
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


@pytest.mark.slow
def test_hold_harness_starts_holds_and_releases_every_workflow() -> None:
    report = _run_harness("--hold", "30", "--starters", "4")
    assert report["workload"] == "hold"
    assert report["workflows"] == 30
    assert report["completed"] == 30
    assert report["failed"] == 0
    assert report["release_refused"] == 0
    assert report["store"] == "sqlite"
    assert report["server_rss_mb"] > 0
    for phase in ("start", "release", "end"):
        assert report[f"{phase}_per_s"] > 0
        assert f"{phase}_server_cpu_s_per_1k" in report
        assert f"{phase}_generator_cpu_s_per_1k" in report


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
