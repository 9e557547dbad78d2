"""WorkflowLocks (server/engine/signals.py): one holder per workflow id, waiters served in
order, nothing left behind by cancelled waiters."""

from __future__ import annotations

import trio
import trio.lowlevel
import trio.testing

from server.engine.signals import WorkflowLocks


async def test_one_holder_at_a_time_and_waiters_in_order() -> None:
    locks = WorkflowLocks()
    order: list[str] = []

    async def use(name: str) -> None:
        async with locks.hold("wf"):
            order.append(f"{name}+")
            await trio.lowlevel.checkpoint()  # others run meanwhile but cannot get in
            order.append(f"{name}-")

    async with trio.open_nursery() as nursery:
        for name in "abc":
            nursery.start_soon(use, name)
            await trio.testing.wait_all_tasks_blocked()
    assert order == ["a+", "a-", "b+", "b-", "c+", "c-"]
    assert locks.held() == 0


async def test_other_ids_do_not_wait(autojump_clock: trio.abc.Clock) -> None:
    locks = WorkflowLocks()
    async with locks.hold("a"):
        with trio.move_on_after(1) as scope:
            async with locks.hold("b"):
                pass
        assert not scope.cancelled_caught
        assert locks.held() == 1
    assert locks.held() == 0


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    locks = WorkflowLocks()
    got: list[str] = []
    scopes: dict[str, trio.CancelScope] = {}

    async def waiter(name: str) -> None:
        with trio.CancelScope() as scope:
            scopes[name] = scope
            async with locks.hold("wf"):
                got.append(name)

    async with trio.open_nursery() as nursery:
        await locks.acquire("wf")
        for name in ("gone", "stays"):
            nursery.start_soon(waiter, name)
            await trio.testing.wait_all_tasks_blocked()
        scopes["gone"].cancel()
        await trio.testing.wait_all_tasks_blocked()
        locks.release("wf")
    assert got == ["stays"]
    assert locks.held() == 0


async def test_hold_many_takes_every_id_and_gives_them_back(
    autojump_clock: trio.abc.Clock,
) -> None:
    locks = WorkflowLocks()
    async with locks.hold_many(["b", "a", "b"]):
        assert locks.held() == 2
        with trio.move_on_after(1) as scope:
            async with locks.hold("a"):
                pass
        assert scope.cancelled_caught  # "a" is held
    assert locks.held() == 0
