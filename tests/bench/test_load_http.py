"""bench.load_http: the harness's keep-alive client against a scripted trio server.

Rules: the server is a few lines of trio in the test (it records each request and
replies with canned bytes), so the client's parsing and reconnecting are checked
without Podium's HTTP stack.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
import trio

from bench.load_http import Connection, HttpError

Reply = Callable[[bytes], bytes]


async def _serve(reply: Reply, seen: list[bytes], stream: trio.SocketStream) -> None:
    buffer = b""
    async with stream:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                buffer += await stream.receive_some(65536)
            body, buffer = buffer[:length], buffer[length:]
            seen.append(head.split(b"\r\n")[0] + b" " + body)
            answer = reply(body)
            await stream.send_all(answer)
            if b"connection: close" in answer:
                return


async def _server(nursery: trio.Nursery, reply: Reply, seen: list[bytes]) -> str:
    listeners = await nursery.start(
        partial(trio.serve_tcp, partial(_serve, reply, seen), 0, host="127.0.0.1")
    )
    port = listeners[0].socket.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def _ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body) + 3,
        b"re:" + body,
    )


async def test_requests_share_one_connection_and_bodies_come_back_whole() -> None:
    seen: list[bytes] = []
    async with trio.open_nursery() as nursery:
        base = await _server(nursery, _ok, seen)
        conn = Connection(base)
        big = b'{"x":"' + b"y" * 200_000 + b'"}'
        assert await conn.post("/workflow/a", b'{"n":1}') == (200, b're:{"n":1}')
        assert await conn.post("/workflow/b", big) == (200, b"re:" + big)
        assert await conn.post("/tasks/w/hold/COMPLETED") == (200, b"re:{}")
        await conn.aclose()
        nursery.cancel_scope.cancel()
    assert [s.split(b" ")[:2] for s in seen] == [
        [b"POST", b"/api/workflow/a"],
        [b"POST", b"/api/workflow/b"],
        [b"POST", b"/api/tasks/w/hold/COMPLETED"],
    ]


async def test_an_error_status_is_returned_not_raised() -> None:
    def not_found(_body: bytes) -> bytes:
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"

    async with trio.open_nursery() as nursery:
        conn = Connection(await _server(nursery, not_found, []))
        assert await conn.post("/x") == (404, b"no")
        await conn.aclose()
        nursery.cancel_scope.cancel()


async def test_a_connection_the_server_closes_is_reopened_for_the_next_request() -> None:
    seen: list[bytes] = []

    def close_after(body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"

    async with trio.open_nursery() as nursery:
        conn = Connection(await _server(nursery, close_after, seen))
        assert await conn.post("/one") == (200, b"ok")
        assert await conn.post("/two") == (200, b"ok")
        await conn.aclose()
        nursery.cancel_scope.cancel()
    assert len(seen) == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"garbage\r\n\r\n",
    ],
)
async def test_replies_it_cannot_read_raise(answer: bytes) -> None:
    async with trio.open_nursery() as nursery:
        conn = Connection(await _server(nursery, lambda _b: answer, []))
        with pytest.raises(HttpError):
            await conn.post("/x")
        await conn.aclose()
        nursery.cancel_scope.cancel()


def test_only_plain_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="only http://"):
        Connection("https://example.invalid/api")
