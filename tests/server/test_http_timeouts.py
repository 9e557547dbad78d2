"""Timeouts of the connection loop, on in-memory streams with trio's MockClock
(autojump), so 75 s of idle keep-alive pass in microseconds and deterministically."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from server.http import HttpConfig, Request, Response, Router
from server.http.server import ConnectionTracker
from tests.server.http_support import RawResponse, _Collector, get


class Peer:
    """The client end of an in-memory connection."""

    def __init__(self, stream: trio.abc.HalfCloseableStream) -> None:
        import httptools

        self.stream = stream
        self.collector = _Collector()
        self.collector.parser = httptools.HttpResponseParser(self.collector)

    async def response(self) -> RawResponse | None:
        """The next response, or None on EOF."""
        while not self.collector.done:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.collector.parser.feed_data(data)  # type: ignore[union-attr]
        return self.collector.done.pop(0)

    async def eof(self) -> bool:
        return await self.stream.receive_some(65536) == b""


def make_router() -> Router:
    router = Router()

    async def hello(request: Request) -> Response:
        return Response.text("hi")

    async def slow(request: Request) -> Response:
        await trio.sleep(500)
        return Response.text("slow done")

    async def echo(request: Request) -> Response:
        return Response(200, request.body)

    router.add("GET", "/hello", hello)
    router.add("GET", "/slow", slow)
    router.add("POST", "/echo", echo)
    return router


async def connect(
    nursery: trio.Nursery, *, lockstep: bool = False, **config: Any
) -> tuple[Peer, ConnectionTracker]:
    tracker = ConnectionTracker(HttpConfig(**config))
    pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
    client, server = pair()
    nursery.start_soon(tracker.reap)
    nursery.start_soon(tracker.serve, server, make_router())
    await trio.testing.wait_all_tasks_blocked()
    return Peer(client), tracker


async def test_idle_connection_kept_for_keepalive_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    peer, tracker = await connect(nursery, keepalive_timeout=75)
    await peer.stream.send_all(get("/hello"))
    assert (await peer.response()) is not None
    await trio.sleep(74)  # longer than the SDK's 30 s keepalive_expiry
    await peer.stream.send_all(get("/hello"))
    resp = await peer.response()
    assert resp is not None
    assert resp.body == b"hi"
    start = trio.current_time()
    assert await peer.eof()
    idle_for = trio.current_time() - start
    assert 75 <= idle_for <= 76  # closed after the timeout, to the reaper's 1 s resolution
    await peer.stream.aclose()  # the server half-closed and waits for our EOF: give it
    await trio.testing.wait_all_tasks_blocked()
    assert len(tracker) == 0


async def test_header_timeout_is_408_even_if_bytes_trickle(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    peer, _ = await connect(nursery, header_timeout=30)
    start = trio.current_time()
    await peer.stream.send_all(b"GET /hello HTTP/1.1\r\n")
    for _ in range(3):  # a slow-loris client: one header line every 9 s
        await trio.sleep(9)
        await peer.stream.send_all(b"X-A: b\r\n")
    resp = await peer.response()
    assert resp is not None
    assert resp.status == 408
    assert resp.headers["connection"] == "close"
    assert 30 <= trio.current_time() - start <= 31
    assert await peer.eof()


async def test_body_timeout_is_inactivity_based(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    peer, _ = await connect(nursery, body_timeout=30)
    head = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\n"
    await peer.stream.send_all(head)
    for byte in b"abc":  # slow but steady: 60 s in all, each pause below the timeout
        await trio.sleep(20)
        await peer.stream.send_all(bytes([byte]))
    await peer.stream.send_all(b"def")
    resp = await peer.response()
    assert resp is not None
    assert resp.status == 200
    assert resp.body == b"abcdef"
    await peer.stream.send_all(head + b"ab")
    stalled = trio.current_time()
    resp = await peer.response()  # then a request that stalls
    assert resp is not None
    assert resp.status == 408
    assert 30 <= trio.current_time() - stalled <= 31


async def test_slow_handler_is_never_timed_out(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    peer, _ = await connect(nursery, keepalive_timeout=5, header_timeout=5, write_timeout=5)
    await peer.stream.send_all(get("/slow"))
    resp = await peer.response()
    assert resp is not None
    assert resp.body == b"slow done"


async def test_client_not_reading_hits_write_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    peer, tracker = await connect(nursery, lockstep=True, write_timeout=30)
    await peer.stream.send_all(get("/hello"))
    await trio.sleep(20)
    assert len(tracker) == 1
    await trio.sleep(20)
    assert len(tracker) == 0


async def test_shutdown_closes_idle_connection(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    peer, tracker = await connect(nursery)
    await peer.stream.send_all(get("/hello"))
    assert (await peer.response()) is not None
    tracker.begin_shutdown()
    assert await peer.eof()
