"""Unit tests: the runner's capped exponential backoff."""

from __future__ import annotations

import pytest

from client import Backoff


def test_delays_double_until_the_cap() -> None:
    b = Backoff(initial_s=0.1, factor=2, max_s=1.0, jitter=0)
    assert [round(b.delay(n), 6) for n in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_huge_attempt_counts_stay_at_the_cap() -> None:
    b = Backoff(initial_s=0.5, factor=3, max_s=30, jitter=0)
    assert b.delay(10_000) == 30


def test_jitter_stays_within_its_fraction() -> None:
    b = Backoff(initial_s=1, factor=2, max_s=4, jitter=0.25)
    delays = [b.delay(5) for _ in range(200)]
    assert all(4 <= d <= 5 for d in delays)
    assert len(set(delays)) > 1  # it does vary


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_s": 0}, "initial_s > 0"),
        ({"factor": 0.5}, "factor >= 1"),
        ({"initial_s": 2, "max_s": 1}, "max_s >= initial_s"),
        ({"jitter": 1.5}, "jitter must be between 0 and 1, got 1.5"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)
