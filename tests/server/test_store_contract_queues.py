"""Store contract, queues and worker data: delivery order, delays, visibility timeouts,
replacement, concurrent poppers (spec 5.1); poll data and task execution logs.

Rules: as tests/server/test_store_contract.py; time is always `now_ms`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from core.store import LogLine, PollRecord, Store
from tests.server.contract_support import T0, open_backend
from tests.server.store_backends import backend_params


@pytest.fixture(params=backend_params())
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with open_backend(request) as s:
        yield s


# ====================================================================== queues


async def test_push_pop_ack(store: Store) -> None:
    await store.push("q", "m1", now_ms=T0)
    assert await store.contains("q", "m1") is True
    assert await store.size("q") == 1
    assert await store.pop("q", 5, unack_ms=1000, now_ms=T0) == ["m1"]
    # Popped but unacked: still in the queue, counted, hidden from other pollers.
    assert await store.contains("q", "m1") is True
    assert await store.size("q") == 1
    assert await store.pop("q", 5, unack_ms=1000, now_ms=T0 + 1) == []
    assert await store.ack("q", "m1") is True
    assert await store.ack("q", "m1") is False
    assert await store.contains("q", "m1") is False
    assert await store.size("q") == 0
    # Acked: never delivered again, even after the visibility timeout.
    assert await store.pop("q", 5, unack_ms=1000, now_ms=T0 + 10_000) == []


async def test_pop_order_time_then_priority_then_insertion(store: Store) -> None:
    await store.push("q", "late", delay_ms=50, priority=99, now_ms=T0)
    await store.push("q", "low-1", priority=1, now_ms=T0)
    await store.push("q", "high", priority=9, now_ms=T0)
    await store.push("q", "low-2", priority=1, now_ms=T0)
    await store.push("q", "early", priority=0, now_ms=T0 - 10)
    assert await store.peek("q", 10) == ["early", "high", "low-1", "low-2", "late"]
    assert await store.pop("q", 2, unack_ms=60_000, now_ms=T0) == ["early", "high"]
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0) == ["low-1", "low-2"]
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 50) == ["late"]


async def test_pop_count_is_an_upper_bound(store: Store) -> None:
    for i in range(5):
        await store.push("q", f"m{i}", now_ms=T0)
    assert await store.pop("q", 3, unack_ms=1000, now_ms=T0) == ["m0", "m1", "m2"]
    assert await store.pop("q", 3, unack_ms=1000, now_ms=T0) == ["m3", "m4"]
    assert await store.pop("q", 3, unack_ms=1000, now_ms=T0) == []
    assert await store.pop("empty", 3, unack_ms=1000, now_ms=T0) == []


async def test_delayed_message_is_invisible_until_its_time(store: Store) -> None:
    await store.push("q", "m", delay_ms=5000, now_ms=T0)
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 4999) == []
    assert await store.contains("q", "m") is True
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 5000) == ["m"]


async def test_visibility_timeout_redelivers_unacked_message(store: Store) -> None:
    await store.push("q", "m", now_ms=T0)
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0) == ["m"]
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 999) == []
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 1000) == ["m"]
    # The second delivery got a fresh timeout.
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 1999) == []
    assert await store.pop("q", 1, unack_ms=1000, now_ms=T0 + 2000) == ["m"]


async def test_push_of_existing_id_replaces_time_and_priority(store: Store) -> None:
    await store.push("q", "a", priority=0, now_ms=T0)
    await store.push("q", "b", priority=5, now_ms=T0)
    await store.push("q", "a", priority=9, now_ms=T0)
    assert await store.size("q") == 2
    assert await store.peek("q", 10) == ["a", "b"]
    await store.push("q", "a", delay_ms=1000, now_ms=T0)
    assert await store.size("q") == 2
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0) == ["b"]
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 1000) == ["a"]
    # Pushing a popped (unacked) message makes it visible again at the new time.
    await store.push("q", "a", now_ms=T0 + 1000)
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 1000) == ["a"]


async def test_remove_and_postpone(store: Store) -> None:
    await store.push("q", "a", now_ms=T0)
    await store.push("q", "b", now_ms=T0)
    assert await store.remove("q", "a") is True
    assert await store.remove("q", "a") is False
    assert await store.remove("other", "a") is False
    await store.postpone("q", "b", delay_ms=2000, priority=3, now_ms=T0)
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 1999) == []
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 2000) == ["b"]
    # Postponing an unacked message re-schedules it (the decider queue relies on this).
    await store.postpone("q", "b", delay_ms=10, now_ms=T0 + 2000)
    assert await store.pop("q", 10, unack_ms=60_000, now_ms=T0 + 2010) == ["b"]
    # Postponing an unknown id adds it.
    await store.postpone("q", "new", delay_ms=0, now_ms=T0)
    assert await store.contains("q", "new") is True


async def test_sizes_and_peek(store: Store) -> None:
    assert await store.sizes() == {}
    await store.push("q1", "a", now_ms=T0)
    await store.push("q1", "b", now_ms=T0)
    await store.push("q2", "c", delay_ms=10_000, now_ms=T0)
    await store.push("q3", "d", now_ms=T0)
    await store.ack("q3", "d")
    await store.pop("q1", 1, unack_ms=1000, now_ms=T0)
    # Unacked and delayed messages count; emptied queues are not listed.
    assert await store.sizes() == {"q1": 2, "q2": 1}
    assert await store.size("q2") == 1
    assert await store.size("never") == 0
    assert await store.peek("q2", 10) == ["c"]
    assert await store.peek("q1", 1) == ["b"]  # a is hidden until T0 + 1000
    assert await store.peek("never", 5) == []


async def test_queues_are_independent(store: Store) -> None:
    await store.push("q1", "m", now_ms=T0)
    await store.push("q2", "m", priority=3, now_ms=T0)
    assert await store.pop("q1", 1, unack_ms=1000, now_ms=T0) == ["m"]
    assert await store.contains("q2", "m") is True
    assert await store.pop("q2", 1, unack_ms=1000, now_ms=T0) == ["m"]
    assert await store.ack("q1", "m") is True
    assert await store.contains("q2", "m") is True


async def test_concurrent_poppers_never_share_a_message(store: Store) -> None:
    expected = {f"m{i:03d}" for i in range(60)}
    for m in sorted(expected):
        await store.push("q", m, now_ms=T0)
    got: list[str] = []

    async def popper() -> None:
        while True:
            batch = await store.pop("q", 4, unack_ms=60_000, now_ms=T0)
            if not batch:
                return
            got.extend(batch)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(popper)
    assert len(got) == len(expected)
    assert set(got) == expected


# ====================================================================== workers


async def test_poll_data_keeps_the_last_poll_per_queue_and_domain(store: Store) -> None:
    await store.record_poll(
        PollRecord(queue_name="a", domain=None, worker_id="w1", last_poll_time=1)
    )
    await store.record_poll(
        PollRecord(queue_name="a", domain=None, worker_id="w2", last_poll_time=2)
    )
    await store.record_poll(
        PollRecord(queue_name="a", domain="blue", worker_id="w3", last_poll_time=3)
    )
    await store.record_poll(
        PollRecord(queue_name="b", domain=None, worker_id=None, last_poll_time=4)
    )
    a = await store.poll_data("a")
    assert [(r.domain, r.worker_id, r.last_poll_time) for r in a] == [
        (None, "w2", 2),
        ("blue", "w3", 3),
    ]
    every = await store.poll_data(None)
    assert sorted((r.queue_name, r.domain or "", r.worker_id or "") for r in every) == [
        ("a", "", "w2"),
        ("a", "blue", "w3"),
        ("b", "", ""),
    ]
    assert await store.poll_data("zzz") == []


async def test_exec_logs_keep_order(store: Store) -> None:
    await store.add_logs(
        [
            LogLine(task_id="t1", log="first", created_time=5),
            LogLine(task_id="t2", log="other", created_time=1),
        ]
    )
    await store.add_logs([LogLine(task_id="t1", log="second", created_time=3)])
    await store.add_logs([])
    logs = await store.get_logs("t1")
    assert [(x.log, x.created_time) for x in logs] == [("first", 5), ("second", 3)]
    assert [x.task_id for x in logs] == ["t1", "t1"]
    assert await store.get_logs("none") == []
