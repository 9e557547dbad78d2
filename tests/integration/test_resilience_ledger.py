"""The resilience tests' own judge: the lease-overlap check fires on a task held by two
workers at once, and accepts the same task handed out again after its result landed."""

from __future__ import annotations

import pytest

from tests.integration.resilience_support import (
    Handout,
    Ledger,
    Report,
    assert_no_overlapping_leases,
)


def _handout(at: float, server: str, poll_count: int) -> Handout:
    return Handout(
        task_id="t1",
        workflow_id="w1",
        ref="s1",
        retry_count=0,
        poll_count=poll_count,
        scheduled_time=0,
        worker_id=f"worker-{server}",
        server=server,
        at=at,
        wall_ms=0,
    )


def _report(done_at: float, accepted: bool = True) -> Report:
    return Report("t1", "IN_PROGRESS", None, "A", done_at - 0.01, done_at, accepted)


def test_two_live_leases_of_one_task_are_reported() -> None:
    ledger = Ledger(handouts=[_handout(1.0, "A", 1), _handout(1.5, "B", 2)])
    ledger.reports.append(_report(2.0))
    with pytest.raises(AssertionError, match="handed to worker-B via B"):
        assert_no_overlapping_leases(ledger)


def test_a_refused_report_does_not_end_the_lease() -> None:
    ledger = Ledger(handouts=[_handout(1.0, "A", 1), _handout(3.0, "B", 2)])
    ledger.reports += [_report(2.0, accepted=False), _report(4.0)]
    with pytest.raises(AssertionError, match="still held it"):
        assert_no_overlapping_leases(ledger)


def test_hand_out_after_the_result_landed_is_fine_but_needs_a_higher_poll_count() -> None:
    ledger = Ledger(handouts=[_handout(1.0, "A", 1), _handout(3.0, "B", 2)])
    ledger.reports += [_report(2.0), _report(4.0)]
    assert assert_no_overlapping_leases(ledger) == 1
    stale = Ledger(handouts=[_handout(1.0, "A", 1), _handout(3.0, "B", 1)])
    stale.reports += [_report(2.0), _report(4.0)]
    with pytest.raises(AssertionError, match="pollCount did not grow"):
        assert_no_overlapping_leases(stale)
