"""The asyncio sidecar bridge: results, exceptions, cancellation forwarding, concurrency.

Rules: the slow calls are real (asyncio.sleep on the sidecar loop, PostgreSQL's pg_sleep, a
Redis BLPOP); cancellation must reach them and leave the connection usable.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
import trio

from core.errors import InternalError
from server.stores.bridge import AsyncioBridge


@pytest.fixture
async def bridge() -> AsyncIterator[AsyncioBridge]:
    b = AsyncioBridge.acquire()
    try:
        yield b
    finally:
        b.release()


async def test_result_and_runs_on_the_sidecar_thread(bridge: AsyncioBridge) -> None:
    async def where() -> tuple[str, bool]:
        await asyncio.sleep(0)
        return threading.current_thread().name, asyncio.get_running_loop() is not None

    name, has_loop = await bridge.run(where)
    assert name == "podium-asyncio-bridge"
    assert has_loop
    assert threading.current_thread().name != name


async def test_exception_propagates_unchanged(bridge: AsyncioBridge) -> None:
    class Boom(Exception):
        pass

    async def fail() -> None:
        await asyncio.sleep(0)
        raise Boom("from asyncio")

    with pytest.raises(Boom, match="from asyncio"):
        await bridge.run(fail)


async def test_factory_that_raises_is_reported(bridge: AsyncioBridge) -> None:
    def bad_factory() -> asyncio.Future[None]:
        raise ValueError("factory broke")

    with pytest.raises(ValueError, match="factory broke"):
        await bridge.run(bad_factory)


async def test_cancellation_is_forwarded_and_waits_for_the_task(bridge: AsyncioBridge) -> None:
    unwound: list[str] = []

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # cleanup that must finish before trio resumes
            unwound.append("cleaned")
            raise
        return "finished"

    with trio.move_on_after(0.1) as scope:
        await bridge.run(slow)
    assert scope.cancelled_caught
    assert unwound == ["cleaned"]
    assert await bridge.run(lambda: asyncio.sleep(0, "still works")) == "still works"


async def test_many_concurrent_calls(bridge: AsyncioBridge) -> None:
    results: dict[int, int] = {}

    async def one(i: int) -> None:
        async def square() -> int:
            await asyncio.sleep(0.001 * (i % 5))
            return i * i

        results[i] = await bridge.run(square)

    async with trio.open_nursery() as nursery:
        for i in range(300):
            nursery.start_soon(one, i)
    assert results == {i: i * i for i in range(300)}


async def test_shared_per_process_and_stops_on_last_release() -> None:
    first = AsyncioBridge.acquire()
    second = AsyncioBridge.acquire()
    assert first is second
    first.release()
    assert second.running
    second.release()
    if not second.running:  # no other user in this process (other fixtures may hold it)
        with pytest.raises(InternalError, match="acquire"):
            await second.run(lambda: asyncio.sleep(0))
        again = AsyncioBridge.acquire()
        try:
            assert await again.run(lambda: asyncio.sleep(0, 7)) == 7
        finally:
            again.release()


async def test_postgres_pg_sleep_cancelled_quickly(
    bridge: AsyncioBridge, postgres_dsn: str
) -> None:
    import asyncpg

    conn = await bridge.run(lambda: asyncpg.connect(postgres_dsn))
    try:
        start = trio.current_time()
        with trio.move_on_after(0.2):
            await bridge.run(lambda: conn.execute("SELECT pg_sleep(2)"))
        elapsed = trio.current_time() - start
        assert elapsed < 1.0
        assert await bridge.run(lambda: conn.fetchval("SELECT 41 + 1")) == 42
    finally:
        await bridge.run(conn.close)


async def test_redis_blpop_cancelled_quickly(bridge: AsyncioBridge, redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = await bridge.run(lambda: asyncio.sleep(0, aioredis.from_url(redis_url)))
    key = "podium-test:bridge:blpop"
    try:
        start = trio.current_time()
        with trio.move_on_after(0.2):
            await bridge.run(lambda: client.blpop([key], timeout=2))
        assert trio.current_time() - start < 1.0
        assert await bridge.run(lambda: client.ping()) is True
    finally:
        await bridge.run(client.aclose)


def test_two_trio_runs_in_two_threads_each_get_their_own_results() -> None:
    # Wake-ups are batched per trio run: results must go to the run that asked.
    bridge = AsyncioBridge.acquire()
    outcomes: dict[str, list[int]] = {}

    def run_in_thread(name: str, base: int) -> None:
        async def main() -> None:
            got: list[int] = []

            async def one(i: int) -> None:
                got.append(await bridge.run(lambda: asyncio.sleep(0, base + i)))

            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(one, i)
            outcomes[name] = sorted(got)

        trio.run(main)

    try:
        threads = [
            threading.Thread(target=run_in_thread, args=("a", 0)),
            threading.Thread(target=run_in_thread, args=("b", 1000)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        bridge.release()
    assert outcomes == {"a": list(range(100)), "b": list(range(1000, 1100))}
