"""WorkflowLocks: one decide per workflow at a time, nothing left behind."""

from __future__ import annotations

import pytest
import trio

from server.engine.signals import WorkflowLocks


async def test_holds_of_one_workflow_take_turns_and_leave_nothing_behind(
    autojump_clock: trio.abc.Clock,
) -> None:
    locks = WorkflowLocks()
    inside: list[str] = []
    order: list[str] = []

    async def decide(workflow_id: str, name: str) -> None:
        async with locks.hold(workflow_id):
            inside.append(workflow_id)
            assert inside.count(workflow_id) == 1
            order.append(name)
            await trio.sleep(1)
            inside.remove(workflow_id)

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(decide, "a", f"a{i}")
        nursery.start_soon(decide, "b", "b0")
        await trio.sleep(0.5)
        assert sorted(inside) == ["a", "b"]  # other workflows are not held up
        assert locks.held() == 2
    assert sorted(order) == ["a0", "a1", "a2", "b0"]
    assert locks.held() == 0


async def test_a_waiter_cancelled_or_a_holder_failing_leaves_nothing_behind(
    autojump_clock: trio.abc.Clock,
) -> None:
    locks = WorkflowLocks()

    async def hold_long() -> None:
        async with locks.hold("a"):
            await trio.sleep(10)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold_long)
        await trio.sleep(1)
        with trio.move_on_after(1):
            async with locks.hold("a"):
                pytest.fail("got a lock that is held")
        assert locks.held() == 1
    assert locks.held() == 0
    with pytest.raises(ValueError, match="boom"):
        async with locks.hold("a"):
            raise ValueError("boom")
    assert locks.held() == 0
    async with locks.hold_many(["b", "a", "b"]):
        assert locks.held() == 2
    assert locks.held() == 0
