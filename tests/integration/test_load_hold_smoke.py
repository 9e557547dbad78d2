"""Smoke test of `python -m bench.load --hold N` against a server it starts.

Rules: a tiny run (30 held workflows, SQLite); asserts the JSON report's shape and that
every held workflow was released and ended COMPLETED. Rates and CPU figures are
printed by the harness, never asserted beyond being present.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_hold_harness_starts_holds_and_releases_every_workflow() -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.load", "--hold", "30", "--starters", "4"),
            *("--json", "--no-progress", "--timeout", "60"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
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
