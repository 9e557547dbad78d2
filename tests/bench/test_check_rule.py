"""The CI performance guard's rule (bench/check.py), not its timings.

Rules: pure arithmetic on made-up ratios; nothing here is timed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import check


def test_threshold_keeps_half_the_speedup_above_one() -> None:
    assert check.threshold(1.8, 1.0) == pytest.approx(1.4)
    assert check.threshold(5.0, 1.0) == pytest.approx(3.0)


def test_threshold_never_below_the_floor() -> None:
    assert check.threshold(1.3, 1.2) == pytest.approx(1.2)
    assert check.threshold(4.76, 3.0) == pytest.approx(3.0)


def test_threshold_rejects_a_share_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match=r"keep must be within 0\.\.1"):
        check.threshold(2.0, 1.0, keep=1.5)


@pytest.mark.parametrize(
    ("ratio", "passed"),
    [
        (1.81, True),  # as committed
        (1.55, True),  # a noisy run, 15% down
        (1.42, True),  # just above the threshold (1.41)
        (1.39, False),  # lost more than half the speed-up
        (1.15, False),  # a compiled twin without its .pxd types
    ],
)
def test_judge_decider_like_kernel(ratio: float, passed: bool) -> None:
    verdict = check.judge("decider_sequential", ratio, {"ratio": 1.82, "floor": 1.2})
    assert verdict.passed is passed
    assert verdict.threshold == pytest.approx(1.41)
    assert verdict.baseline == 1.82


def test_judge_mapping_without_pxd_fails() -> None:
    # Measured: the mapping twin built without mapping_c.pxd runs 1.85x pure Python.
    entry = {"ratio": 4.76, "floor": 3.0}
    assert not check.judge("mapping", 1.85, entry).passed
    assert check.judge("mapping", 4.2, entry).passed


def test_a_ratio_of_60_percent_of_baseline_would_miss_the_decider_regression() -> None:
    # Why the rule compares the speed-up above 1: 0.6 * 1.82 < 1.15 < threshold.
    assert 1.15 > 0.6 * 1.82
    assert not check.judge("decider_sequential", 1.15, {"ratio": 1.82, "floor": 1.0}).passed


def test_judge_rejects_a_malformed_entry() -> None:
    with pytest.raises(KeyError):
        check.judge("mapping", 2.0, {"ratio": 4.0})


def test_committed_baseline_covers_every_guarded_kernel() -> None:
    baseline = check.load_baseline()
    for guarded in check.guarded_kernels():
        entry = baseline[guarded.name]
        assert entry["ratio"] > 1.0
        assert 1.0 <= entry["floor"] <= entry["ratio"]


def test_load_baseline_rejects_a_file_without_kernel_entries(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"kernels": [1.5]}))
    with pytest.raises(ValueError, match="'kernels' must be an object"):
        check.load_baseline(path)
