"""Arbitrary and mangled bytes on a connection: the server answers with 4xx or a normal
response and closes; it never crashes, never answers 500, never logs an error."""

from __future__ import annotations

import logging

import httptools
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from server.http import HttpConfig
from server.http.server import ConnectionTracker
from tests.server.http_support import AppState, _Collector, build_router

VALID = [
    b"GET /api/workflow/w1?includeTasks=True HTTP/1.1\r\nHost: a\r\n\r\n",
    b'POST /api/workflow HTTP/1.1\r\nHost: a\r\nContent-Length: 16\r\n\r\n{"name":"order"}',
    b"DELETE /api/workflow/w1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
]
ALLOWED = {200, 204, 400, 404, 405, 413, 417, 431}


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=8))
        if action == "insert":
            data[pos:pos] = chunk
        elif action == "delete":
            del data[pos : pos + len(chunk)]
        else:
            data[pos : pos + len(chunk)] = chunk
    return bytes(data)


def exchange(data: bytes) -> list[int]:
    """Send `data`, then EOF; return the statuses of every response received."""

    async def main() -> list[int]:
        tracker = ConnectionTracker(HttpConfig(max_body_bytes=64, max_header_bytes=256))
        client, server = trio.testing.memory_stream_pair()
        collector = _Collector()
        collector.parser = httptools.HttpResponseParser(collector)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tracker.serve, server, build_router(AppState()))
            await client.send_all(data)
            await client.send_eof()
            with trio.fail_after(10):
                while chunk := await client.receive_some(65536):
                    collector.parser.feed_data(chunk)
        return [r.status for r in collector.done]

    return trio.run(main)


@settings(max_examples=150, deadline=None)
@given(st.one_of(mangled(), st.binary(max_size=300)))
def test_garbage_gets_a_4xx_never_a_crash(data: bytes) -> None:
    handler_records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            handler_records.append(record)

    capture = Capture(level=logging.ERROR)
    logger = logging.getLogger("podium.http")
    logger.addHandler(capture)
    try:
        statuses = exchange(data)
    finally:
        logger.removeHandler(capture)
    assert set(statuses) <= ALLOWED, statuses
    assert handler_records == []


@pytest.mark.parametrize("request_bytes", VALID)
def test_valid_requests_succeed(request_bytes: bytes) -> None:
    assert exchange(request_bytes) == [200]
