"""server.collector: the serving process's collector settings, checked in a child process
so this test process keeps its own."""

from __future__ import annotations

import json
import subprocess
import sys

from server import collector

_PROBE = """
import gc, json
import server.collector as c
before = gc.get_threshold()
kept = [object() for _ in range(10)]
c.tune_for_serving()
print(json.dumps({"before": before, "after": gc.get_threshold(),
                  "frozen": gc.get_freeze_count()}))
"""


def test_tune_for_serving_freezes_startup_objects_and_raises_thresholds() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout
    seen = json.loads(out)
    assert seen["after"] == [
        collector.YOUNG_THRESHOLD,
        collector.MIDDLE_THRESHOLD,
        collector.OLD_THRESHOLD,
    ]
    assert seen["after"][0] > seen["before"][0]
    assert seen["frozen"] > 1000  # the imported modules' objects, at least
