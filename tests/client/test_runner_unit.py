"""Unit tests: TaskRunner polling, concurrency, retries, fallback and shutdown (fake server)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import trio
import trio.lowlevel

from client import Backoff, InProgress, NonRetryableError, TaskRunner, worker
from tests.client.fake_server import FakeConductor, make_task

FAST = Backoff(initial_s=0.01, factor=2, max_s=0.05, jitter=0)


async def _until(predicate: Any, timeout_s: float = 10) -> None:
    # The predicates read state spread over the fake and the runner; a short poll is the
    # simplest honest wait, bounded by fail_after.
    with trio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.01)


async def _run(runner: TaskRunner, nursery: trio.Nursery) -> trio.Event:
    done = trio.Event()

    async def go() -> None:
        try:
            await runner.run()
        finally:
            done.set()

    nursery.start_soon(go)
    return done


async def test_runs_tasks_of_several_types_and_reports_each(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    @worker("double")
    def double(n: int) -> dict[str, int]:
        return {"n2": n * 2}

    @worker("shout")
    async def shout(text: str) -> dict[str, str]:
        await trio.lowlevel.checkpoint()
        return {"loud": text.upper()}

    @worker("boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    @worker("never")
    def never() -> None:
        raise NonRetryableError("no way")

    for i in range(6):
        fake.push(make_task("double", {"n": i}))
    fake.push(make_task("shout", {"text": "hi"}))
    fake.push(make_task("boom"))
    fake.push(make_task("never"))
    runner = TaskRunner(
        [double, shout, boom, never], fake.url, concurrency=2, poll_timeout_ms=200, backoff=FAST
    )
    done = await _run(runner, nursery)
    await _until(lambda: len(fake.results) == 9)
    runner.stop()
    with trio.fail_after(5):
        await done.wait()
    by_type = {fake.types[r["taskId"]]: r for r in fake.results}
    doubled = sorted(
        r["outputData"]["n2"]
        for r in fake.results
        if r["status"] == "COMPLETED" and "n2" in r["outputData"]
    )
    assert doubled == [0, 2, 4, 6, 8, 10]
    assert by_type["shout"]["outputData"] == {"loud": "HI"}
    assert by_type["boom"]["status"] == "FAILED"
    assert by_type["boom"]["reasonForIncompletion"] == "kaput"
    assert by_type["never"]["status"] == "FAILED_WITH_TERMINAL_ERROR"
    assert all(r["workerId"] == runner.worker_id for r in fake.results)
    assert runner.stats.completed == 7
    assert runner.stats.failed == 2
    # The poll asked for as many tasks as it had free slots (2), never more.
    counts = {int(r.query["count"]) for r in fake.requests if "/poll/batch/double" in r.path}
    assert max(counts) == 2


async def test_update_v2_next_task_runs_without_a_poll(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    @worker("step")
    def step(i: int) -> dict[str, int]:
        return {"i": i}

    for i in range(5):
        fake.push(make_task("step", {"i": i}))
    runner = TaskRunner([step], fake.url, concurrency=1, poll_timeout_ms=200, backoff=FAST)
    done = await _run(runner, nursery)
    await _until(lambda: len(fake.results) == 5)
    runner.stop()
    with trio.fail_after(5):
        await done.wait()
    assert [r["outputData"]["i"] for r in fake.results] == [0, 1, 2, 3, 4]
    # One poll fetched the first task; update-v2 handed out the other four.
    polls_before_last_result = [
        r
        for r in fake.requests[: fake.requests.index(_last_update(fake)) + 1]
        if "/poll/batch/" in r.path
    ]
    assert len(polls_before_last_result) == 1
    assert {r["_via"] for r in fake.results} == {"v2"}


def _last_update(fake: FakeConductor) -> Any:
    return [r for r in fake.requests if r.path == "/api/tasks/update-v2"][-1]


async def test_concurrency_limit_is_respected_for_blocking_functions(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]

    @worker("slow", poll_count=3)
    def slow() -> dict[str, int]:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)  # a blocking call: must run on a thread, in parallel
        with lock:
            running[0] -= 1
        return {}

    for _ in range(9):
        fake.push(make_task("slow"))
    runner = TaskRunner([slow], fake.url, concurrency=10, poll_timeout_ms=200, backoff=FAST)
    done = await _run(runner, nursery)
    await _until(lambda: len(fake.results) == 9)
    runner.stop()
    with trio.fail_after(5):
        await done.wait()
    assert peak[0] == 3


async def test_failed_updates_are_retried_with_backoff(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    @worker("t")
    def t() -> dict[str, bool]:
        return {"ok": True}

    fake.fail_updates = 3
    fake.push(make_task("t"))
    runner = TaskRunner([t], fake.url, poll_timeout_ms=100, backoff=FAST)
    done = await _run(runner, nursery)
    await _until(lambda: len(fake.results) == 1)
    runner.stop()
    with trio.fail_after(5):
        await done.wait()
    assert runner.stats.updates_retried == 3
    assert runner.stats.updates_dropped == 0
    updates = [r for r in fake.requests if r.path == "/api/tasks/update-v2"]
    assert len(updates) == 4


async def test_result_dropped_after_update_attempts(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    @worker("t")
    def t() -> None:
        return None

    fake.fail_updates = 100
    fake.push(make_task("t"))
    runner = TaskRunner([t], fake.url, poll_timeout_ms=100, backoff=FAST, update_attempts=3)
    done = await _run(runner, nursery)
    await _until(lambda: runner.stats.updates_dropped == 1)
    runner.stop()
    with trio.fail_after(5):
        await done.wait()
    assert len([r for r in fake.requests if r.path == "/api/tasks/update-v2"]) == 3
    assert fake.results == []


async def test_poll_network_errors_are_retried(fake: FakeConductor, nursery: trio.Nursery) -> None:
    @worker("t")
    def t() -> dict[str, int]:
        return {"v": 1}

    fake.reset_polls = 4  # the fake slams the connection shut on the first four polls
    fake.push(make_task("t"))
    runner = TaskRunner([t], fake.url, poll_timeout_ms=100, backoff=FAST)
    done = await _run(runner, nursery)
    await _until(lambda: len(fake.results) == 1)
    runner.stop()
    with trio.fail_after(5):
        await done.wait()
    assert runner.stats.poll_errors == 4
    assert fake.results[0]["outputData"] == {"v": 1}


async def test_server_without_update_v2_falls_back_to_plain_update(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    @worker("t")
    def t(i: int) -> dict[str, int]:
        return {"i": i}

    fake.v2_enabled = False
    for i in range(3):
        fake.push(make_task("t", {"i": i}))
    runner = TaskRunner([t], fake.url, concurrency=1, poll_timeout_ms=100, backoff=FAST)
    done = await _run(runner, nursery)
    await _until(lambda: len(fake.results) == 3)
    runner.stop()
    with trio.fail_after(5):
        await done.wait()
    assert [r["_via"] for r in fake.results] == ["v1", "v1", "v1"]
    assert len([r for r in fake.requests if r.path == "/api/tasks/update-v2"]) == 1


async def test_in_progress_is_reported_with_callback(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    @worker("long")
    def long() -> InProgress:
        return InProgress(callback_after_seconds=30, output={"pct": 10})

    fake.push(make_task("long"))
    runner = TaskRunner([long], fake.url, poll_timeout_ms=100, backoff=FAST)
    done = await _run(runner, nursery)
    await _until(lambda: len(fake.results) == 1)
    runner.stop()
    with trio.fail_after(5):
        await done.wait()
    [r] = fake.results
    assert (r["status"], r["callbackAfterSeconds"], r["outputData"]) == (
        "IN_PROGRESS",
        30,
        {"pct": 10},
    )
    assert runner.stats.in_progress == 1


async def test_graceful_stop_finishes_in_flight_task_and_reports_it(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    started = trio.Event()
    release = trio.Event()

    @worker("hold")
    async def hold() -> dict[str, str]:
        started.set()
        await release.wait()
        return {"done": "yes"}

    fake.push(make_task("hold"))
    fake.push(make_task("hold"))  # queued behind: must NOT be taken after stop()
    runner = TaskRunner([hold], fake.url, concurrency=1, poll_timeout_ms=100, backoff=FAST)
    done = await _run(runner, nursery)
    with trio.fail_after(5):
        await started.wait()
    runner.stop()
    await trio.sleep(0.3)
    assert not done.is_set()  # still waiting for the task in flight
    polls_at_stop = len([r for r in fake.requests if "/poll/batch/" in r.path])
    release.set()
    with trio.fail_after(5):
        await done.wait()
    [r] = fake.results
    assert r["outputData"] == {"done": "yes"}
    # reported with the plain update, which hands out no further task
    assert r["_via"] == "v1"
    assert len(fake.queues["hold"]) == 1
    assert len([r for r in fake.requests if "/poll/batch/" in r.path]) == polls_at_stop


async def test_stop_while_idle_returns_promptly(fake: FakeConductor, nursery: trio.Nursery) -> None:
    @worker("idle")
    def idle() -> None:
        return None

    runner = TaskRunner([idle], fake.url, poll_timeout_ms=300, backoff=FAST)
    done = await _run(runner, nursery)
    await _until(lambda: any("/poll/batch/idle" in r.path for r in fake.requests))
    runner.stop()
    # the poll already on the wire is allowed to finish (<= poll_timeout_ms), no more
    with trio.fail_after(2):
        await done.wait()
    assert fake.results == []


def test_runner_settings_are_checked() -> None:
    @worker("a")
    def a() -> None:
        return None

    @worker("a")
    def a_again() -> None:
        return None

    with pytest.raises(ValueError, match="two workers serve task type 'a'"):
        TaskRunner([a, a_again], "http://127.0.0.1:1")
    with pytest.raises(ValueError, match="poll_timeout_ms must be between 0 and 5000"):
        TaskRunner([a], "http://127.0.0.1:1", poll_timeout_ms=6000)
    with pytest.raises(ValueError, match="concurrency must be >= 1, got 0"):
        TaskRunner([a], "http://127.0.0.1:1", concurrency=0)
    with pytest.raises(ValueError, match="needs at least one worker"):
        TaskRunner([], "http://127.0.0.1:1")


async def test_tasks_from_a_poll_in_flight_at_stop_are_run_not_dropped(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    @worker("late")
    def late(i: int) -> dict[str, int]:
        return {"i": i}

    runner = TaskRunner([late], fake.url, poll_timeout_ms=2000, backoff=FAST)
    done = await _run(runner, nursery)
    await _until(lambda: any("/poll/batch/late" in r.path for r in fake.requests))
    runner.stop()  # the poll is already waiting on the server
    fake.push(make_task("late", {"i": 7}))  # ... and the server hands it this task
    with trio.fail_after(5):
        await done.wait()
    [r] = fake.results
    assert r["outputData"] == {"i": 7}
    assert r["_via"] == "v1"
    assert len([r for r in fake.requests if "/poll/batch/" in r.path]) == 1


async def test_extra_tasks_from_the_server_are_run_without_growing_the_limit(
    fake: FakeConductor, nursery: trio.Nursery
) -> None:
    @worker("t", poll_count=1)
    def t(i: int) -> dict[str, int]:
        return {"i": i}

    fake.v2_enabled = False  # v1: every task comes from a poll, whose count we can read
    fake.overdeliver = 1
    for i in range(2):
        fake.push(make_task("t", {"i": i}))
    runner = TaskRunner([t], fake.url, poll_timeout_ms=50, backoff=FAST)
    done = await _run(runner, nursery)
    await _until(lambda: len(fake.results) == 2)
    seen = len(fake.requests)
    # Idle now: the next polls show how many slots the runner thinks it has.
    await _until(lambda: sum("/poll/batch/" in r.path for r in fake.requests[seen:]) >= 3)
    runner.stop()
    with trio.fail_after(5):
        await done.wait()
    assert sorted(r["outputData"]["i"] for r in fake.results) == [0, 1]
    assert runner.stats.tasks_received == 2
    counts = {r.query["count"] for r in fake.requests[seen:] if "/poll/batch/" in r.path}
    assert counts == {"1"}
