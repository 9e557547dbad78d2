"""Connection behaviour on real loopback sockets: keep-alive, pipelining, limits,
malformed input, Expect, Connection: close, long-poll cancellation, graceful shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
import trio

from server.http import HttpServer
from tests.server.http_support import AppState, RawClient, get, start_server


@pytest.fixture
def state() -> AppState:
    return AppState()


@pytest.fixture
async def server(nursery: trio.Nursery, state: AppState) -> AsyncIterator[HttpServer]:
    srv = await start_server(nursery, state, max_body_bytes=1000, max_header_bytes=2000)
    yield srv
    srv.shutdown()


@pytest.fixture
async def raw(server: HttpServer) -> AsyncIterator[RawClient]:
    client = await RawClient.connect(server.port)
    yield client
    await client.aclose()


async def test_keep_alive_serves_many_requests_on_one_connection(raw: RawClient) -> None:
    for i in range(5):
        await raw.send(get(f"/api/workflow/w{i}"))
        resp = await raw.response()
        assert resp.status == 200
        assert b'"id":"w%d"' % i in resp.body
        assert "connection" not in resp.headers
    assert not raw.eof


async def test_pipelined_requests_answered_in_order(raw: RawClient) -> None:
    await raw.send(
        get("/api/workflow/a")
        + get("/nope")
        + get("/echo", method="POST", body=b"payload")
        + get("/nc")
        + get("/api/workflow/b")
    )
    responses = await raw.responses(5)
    assert [r.status for r in responses] == [200, 404, 200, 204, 200]
    assert b'"id":"a"' in responses[0].body
    assert responses[2].body == b"payload"
    assert b'"id":"b"' in responses[4].body


async def test_request_split_across_many_writes(raw: RawClient) -> None:
    data = get("/echo", method="POST", body=b"0123456789")
    for i in range(len(data)):
        await raw.send(data[i : i + 1])
    resp = await raw.response()
    assert resp.body == b"0123456789"


async def test_oversized_body_is_413_and_closes(raw: RawClient) -> None:
    await raw.send(get("/echo", method="POST", body=b"x" * 1001))
    resp = await raw.response()
    assert resp.status == 413
    assert resp.headers["connection"] == "close"
    assert b"Request body exceeds 1000 bytes" in resp.body
    assert await raw.read_to_eof() == b""


async def test_oversized_chunked_body_is_413(raw: RawClient) -> None:
    chunk = b"x" * 600
    await raw.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2
        + b"0\r\n\r\n"
    )
    resp = await raw.response()
    assert resp.status == 413


async def test_oversized_headers_are_431(raw: RawClient) -> None:
    await raw.send(get("/nc", "X-Big: " + "y" * 2500))
    resp = await raw.response()
    assert resp.status == 431
    assert resp.headers["connection"] == "close"


async def test_malformed_request_is_400_and_closes(raw: RawClient) -> None:
    await raw.send(b"GET /nc HTTP/1.1\r\nbad header line\r\n\r\n")
    resp = await raw.response()
    assert resp.status == 400
    assert resp.headers["connection"] == "close"
    assert b"Malformed HTTP request" in resp.body
    assert await raw.read_to_eof() == b""


async def test_requests_before_a_malformed_one_are_answered(raw: RawClient) -> None:
    await raw.send(get("/api/workflow/first") + b"NOT HTTP AT ALL\r\n\r\n")
    first, second = await raw.responses(2)
    assert first.status == 200
    assert second.status == 400


async def test_expect_100_continue(raw: RawClient) -> None:
    await raw.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    interim = await raw.stream.receive_some(100)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    await raw.send(b"hello")
    resp = await raw.response()
    assert resp.status == 200
    assert resp.body == b"hello"


async def test_expect_100_continue_with_too_large_body_is_413_without_reading(
    raw: RawClient,
) -> None:
    await raw.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
    )
    resp = await raw.response()
    assert resp.status == 413


async def test_connection_close_is_honoured(raw: RawClient) -> None:
    await raw.send(get("/api/workflow/w", "Connection: close"))
    resp = await raw.response()
    assert resp.status == 200
    assert resp.headers["connection"] == "close"
    assert await raw.read_to_eof() == b""


async def test_http_1_0_closes_unless_keep_alive(server: HttpServer) -> None:
    client = await RawClient.connect(server.port)
    await client.send(b"GET /api/workflow/w HTTP/1.0\r\n\r\n")
    resp = await client.response()
    assert resp.status == 200
    assert resp.headers["connection"] == "close"
    assert await client.read_to_eof() == b""
    await client.aclose()


async def test_http_1_0_keep_alive_is_announced(raw: RawClient) -> None:
    for _ in range(2):
        await raw.send(b"GET /api/workflow/w HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        resp = await raw.response()
        assert resp.status == 200
        assert resp.headers["connection"] == "keep-alive"
    assert not raw.eof


async def test_upgrade_request_is_answered_then_closed(raw: RawClient) -> None:
    await raw.send(
        get("/api/workflow/first") + get("/api/workflow/w", "Connection: Upgrade", "Upgrade: h2c")
    )
    first, second = await raw.responses(2)
    assert first.status == 200
    assert "connection" not in first.headers
    assert second.status == 200
    assert second.headers["connection"] == "close"
    assert await raw.read_to_eof() == b""


async def test_long_poll_cancelled_when_client_disconnects(
    server: HttpServer, state: AppState
) -> None:
    client = await RawClient.connect(server.port)
    await client.send(get("/poll"))
    await state.poll_started.wait()
    assert len(server.tracker.peers) == 1  # the socket is in the server's watch set
    await client.aclose()
    # The handler's `finally` runs because the server cancelled it; without the
    # disconnect watcher it would wait for poll_release forever (the test would hang
    # until fail_after).
    with trio.fail_after(5):
        await state.poll_finished.wait()
    assert state.poll_request is not None
    assert state.poll_request.disconnected.is_set()
    assert not state.poll_release.is_set()
    assert len(server.tracker.peers) == 0


async def test_conditional_long_poll_watches_only_when_asked(
    server: HttpServer, state: AppState
) -> None:
    # wait=0: no watcher, so a disconnect does not cancel the handler; it runs to the end.
    client = await RawClient.connect(server.port)
    await client.send(get("/maybe-poll?wait=0"))
    await state.poll_started.wait()
    await client.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert not state.poll_finished.is_set()
    assert state.poll_request is not None
    assert not state.poll_request.disconnected.is_set()
    state.poll_release.set()
    with trio.fail_after(5):
        await state.poll_finished.wait()

    # wait=1: watched, so the disconnect cancels the handler.
    state.poll_started = trio.Event()
    state.poll_finished = trio.Event()
    state.poll_release = trio.Event()
    client = await RawClient.connect(server.port)
    await client.send(get("/maybe-poll?wait=1"))
    await state.poll_started.wait()
    await client.aclose()
    with trio.fail_after(5):
        await state.poll_finished.wait()
    assert state.poll_request.disconnected.is_set()
    assert not state.poll_release.is_set()


async def test_long_poll_buffers_pipelined_request(raw: RawClient, state: AppState) -> None:
    await raw.send(get("/poll"))
    await state.poll_started.wait()
    await raw.send(get("/api/workflow/after"))
    await trio.testing.wait_all_tasks_blocked()
    state.poll_release.set()
    first, second = await raw.responses(2)
    assert first.body == b'{"released":true}'
    assert b'"id":"after"' in second.body
    assert state.poll_request is not None
    assert not state.poll_request.disconnected.is_set()


async def test_graceful_shutdown_finishes_in_flight_request(
    nursery: trio.Nursery, state: AppState
) -> None:
    stopped = trio.Event()
    server: HttpServer | None = None

    async def run_server(task_status: trio.TaskStatus[HttpServer]) -> None:
        from server.http import HttpConfig, serve_http
        from tests.server.http_support import build_router

        await serve_http(
            build_router(state), "127.0.0.1", 0, config=HttpConfig(), task_status=task_status
        )
        stopped.set()

    server = await nursery.start(run_server)
    busy = await RawClient.connect(server.port)
    idle = await RawClient.connect(server.port)
    await idle.send(get("/nc"))
    assert (await idle.response()).status == 204
    await busy.send(get("/gate"))
    await state.gate_entered.wait()

    server.shutdown()
    # The idle keep-alive connection is closed at once, cleanly (EOF, no reset).
    assert await idle.read_to_eof() == b""
    await idle.aclose()
    # New connections are refused once the listener is closed.
    await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", server.port)
    assert not stopped.is_set()

    state.gate_release.set()
    resp = await busy.response()
    assert resp.status == 200
    assert resp.body == b"gate passed"
    assert resp.headers["connection"] == "close"
    assert await busy.read_to_eof() == b""
    await busy.aclose()
    with trio.fail_after(5):
        await stopped.wait()


async def test_graceful_shutdown_cancels_after_deadline(
    nursery: trio.Nursery, state: AppState
) -> None:
    server = await start_server(nursery, state, graceful_timeout=0.05)
    client = await RawClient.connect(server.port)
    await client.send(get("/gate"))
    await state.gate_entered.wait()
    server.shutdown()
    with trio.fail_after(5):
        await state.gate_finished.wait()
    assert not state.gate_release.is_set()
    await client.aclose()


async def test_rejected_upload_is_closed_without_a_reset(raw: RawClient) -> None:
    # The server answers 413 from the headers alone; the client keeps uploading. The
    # server must drain before closing: a close with unread input sends a TCP reset,
    # which would fail this client's send or read with ECONNRESET.
    await raw.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n")
    resp = await raw.response()
    assert resp.status == 413
    chunk = b"z" * 65536
    for _ in range(30):
        await raw.send(chunk)
    await raw.stream.send_eof()
    assert await raw.read_to_eof() == b""


async def test_absolute_form_target_is_routed(raw: RawClient) -> None:
    await raw.send(
        b"GET http://test/api/workflow/abs?includeTasks=false HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    resp = await raw.response()
    assert resp.status == 200
    assert b'"id":"abs","include_tasks":false' in resp.body


async def test_unsupported_expectation_is_417(raw: RawClient) -> None:
    await raw.send(get("/echo", "Expect: something-else", method="POST", body=b"x"))
    resp = await raw.response()
    assert resp.status == 417


async def test_repeated_headers_reach_the_handler_joined(raw: RawClient) -> None:
    # The handler echoes what it reads from `request.headers` (decoded on first use).
    await raw.send(get("/headers", "X-Tag: one", "x-tag: two", "Content-Type: text/plain"))
    resp = await raw.response()
    assert resp.status == 200
    assert msgspec.json.decode(resp.body) == {
        "host": "test",
        "x-tag": "one, two",
        "content-type": "text/plain",
    }


async def test_many_pipelined_requests_on_a_socket_all_answered(raw: RawClient) -> None:
    await raw.send(b"".join(get(f"/api/workflow/p{i}") for i in range(200)))
    responses = await raw.responses(200)
    assert [r.status for r in responses] == [200] * 200
    assert b'"id":"p199"' in responses[-1].body


async def test_a_response_larger_than_the_socket_buffer_arrives_whole(raw: RawClient) -> None:
    await raw.send(get("/big") + get("/nc"))
    big, after = await raw.responses(2)
    assert big.status == 200
    assert big.body == bytes(range(256)) * 32768
    assert after.status == 204
