"""client.http: the keep-alive pool against scripted loopback servers and a real podium server.

The scripted server (tests/client/scripted_server.py) reads requests with h11 and answers
with raw bytes, so each test controls framing, closes and silences exactly.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import h11
import pytest
import trio
import trio.testing

import client.http as http_module
from client import ConductorApiError, ConductorClient
from client.http import HttpPool, TransportError, TransportTimeout
from tests.client.conftest import PodiumServer
from tests.client.scripted_server import Answer, ScriptedServer, ok

Script = Callable[[int, h11.Request, bytes], Answer]


async def _serve(nursery: trio.Nursery, script: Script) -> ScriptedServer:
    server = ScriptedServer(script)
    await nursery.start(server.serve)
    return server


async def test_keep_alive_reuses_one_connection(nursery: trio.Nursery) -> None:
    server = await _serve(nursery, lambda n, req, body: ok(f"answer {n}".encode()))
    async with HttpPool(server.url) as pool:
        bodies = [
            (await pool.request("GET", f"/x?n={n}", headers="Accept: text/plain\r\n")).body
            for n in range(5)
        ]
        posted = await pool.request("POST", "/y", body=b'{"a":1}')
        assert pool.open_connections == pool.idle_connections == 1
    assert bodies == [f"answer {n}".encode() for n in range(5)]
    assert posted.status == 200
    assert server.accepted == 1
    head, body = server.requests[5]
    assert (head.method, head.target, body) == (b"POST", b"/y", b'{"a":1}')
    assert (b"host", f"127.0.0.1:{server.port}".encode()) in head.headers
    assert (b"accept", b"text/plain") in server.requests[0][0].headers


async def test_concurrent_requests_open_connections_up_to_the_limit(
    nursery: trio.Nursery,
) -> None:
    release = trio.Event()
    arrived = 0

    def script(n: int, req: h11.Request, body: bytes) -> Answer:
        nonlocal arrived
        arrived += 1
        return ok(b"done")

    server = await _serve(nursery, script)
    async with HttpPool(server.url, max_connections=2) as pool:
        answers: list[int] = []

        async def one() -> None:
            await release.wait()
            answers.append((await pool.request("GET", "/")).status)

        async with trio.open_nursery() as inner:
            for _ in range(6):
                inner.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            release.set()
        assert pool.open_connections <= 2
    assert answers == [200] * 6
    assert server.accepted <= 2


async def test_chunked_body_split_across_writes(nursery: trio.Nursery) -> None:
    chunked = Answer(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
            b"Content-Type: application/json\r\n\r\n5\r\n[1, 2",
            b"\r\n3\r\n, 3\r\n",
            b"1\r\n]\r\n0\r\n\r\n",
        ]
    )
    server = await _serve(nursery, lambda n, req, body: chunked if n == 0 else ok(b"next"))
    async with HttpPool(server.url) as pool:
        first = await pool.request("GET", "/chunks")
        second = await pool.request("GET", "/again")
    assert first.body == b"[1, 2, 3]"
    assert first.header("content-type") == "application/json"
    assert second.body == b"next"
    assert server.accepted == 1  # the chunked answer left the connection reusable


async def test_body_delimited_by_close_and_connection_close(nursery: trio.Nursery) -> None:
    def script(n: int, req: h11.Request, body: bytes) -> Answer:
        if n == 0:  # no length at all: the body runs until the server closes
            return Answer([b"HTTP/1.1 200 OK\r\n\r\nall of ", b"this"], close=True)
        return Answer([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"])

    server = await _serve(nursery, script)
    async with HttpPool(server.url) as pool:
        first = await pool.request("GET", "/a")
        second = await pool.request("GET", "/b")
        third = await pool.request("GET", "/c")
        assert pool.idle_connections == 0  # "connection: close" is obeyed
    assert (first.body, second.body, third.body) == (b"all of this", b"hi", b"hi")
    assert server.accepted == 3


async def test_interim_1xx_answer_is_skipped(nursery: trio.Nursery) -> None:
    server = await _serve(
        nursery,
        lambda n, req, body: Answer(
            [
                b"HTTP/1.1 100 Continue\r\n\r\n",
                b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n!",
            ]
        ),
    )
    async with HttpPool(server.url) as pool:
        answer = await pool.request("POST", "/", body=b"{}")
    assert (answer.status, answer.reason, answer.body) == (201, "Created", b"!")


async def test_idle_connection_closed_by_the_server_is_replaced(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server closes after each answer (without saying so), as one does on idle timeout.
    server = await _serve(
        nursery, lambda n, req, body: Answer(ok(f"{n}".encode()).pieces, close=True)
    )
    async with HttpPool(server.url) as pool:

        async def answered_then_closed(method: str, retry_safe: bool | None = None) -> bytes:
            server.closed = trio.Event()
            body = b"{}" if method == "POST" else None
            answer = await pool.request(method, "/p", body=body, retry_safe=retry_safe)
            await server.closed.wait()
            return answer.body

        assert await answered_then_closed("GET") == b"0"
        # Reused at once (no idle check yet): the dead connection fails before any
        # answer byte, and the GET is sent again on a new connection.
        assert await answered_then_closed("GET") == b"1"
        # A POST is not resent on its own...
        with pytest.raises(TransportError, match=r"POST http://127\.0\.0\.1:\d+/p"):
            await pool.request("POST", "/p", body=b"{}")
        assert await answered_then_closed("GET") == b"2"
        # ...but the idle check finds the closed connection before sending anything...
        monkeypatch.setattr(http_module, "IDLE_CHECK_S", 0.0)
        assert await answered_then_closed("POST") == b"3"
        # ...and a caller may say a request is safe to send twice.
        monkeypatch.setattr(http_module, "IDLE_CHECK_S", 3600.0)
        assert await answered_then_closed("POST", retry_safe=True) == b"4"
    assert len(server.requests) == 5  # the failed POST never reached the server


async def test_timeout_closes_the_connection(nursery: trio.Nursery) -> None:
    def script(n: int, req: h11.Request, body: bytes) -> Answer:
        if n == 0:
            return Answer(hang=True)  # no answer at all
        if n == 1:  # headers, then a body that never ends
            return Answer([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], hang=True)
        return ok(b"fine")

    server = await _serve(nursery, script)
    async with HttpPool(server.url) as pool:
        with pytest.raises(TransportTimeout, match=r"GET http://127\.0\.0\.1:\d+/slow: no comp"):
            await pool.request("GET", "/slow", timeout_s=0.2)
        assert pool.open_connections == 0
        with pytest.raises(TransportTimeout):
            await pool.request("GET", "/half", timeout_s=0.2)
        assert (await pool.request("GET", "/ok")).body == b"fine"
    assert server.accepted == 3


async def test_refused_and_malformed_are_transport_errors(nursery: trio.Nursery) -> None:
    async with HttpPool("http://127.0.0.1:9") as pool:
        with pytest.raises(TransportError) as refused:
            await pool.request("GET", "/x")
        assert not isinstance(refused.value, TransportTimeout)
        assert refused.value.method == "GET"
        assert refused.value.url == "http://127.0.0.1:9/x"
    server = await _serve(nursery, lambda n, req, body: Answer([b"NOT HTTP AT ALL\r\n\r\n"]))
    async with HttpPool(server.url) as pool:
        with pytest.raises(TransportError, match="malformed answer"):
            await pool.request("GET", "/x")
        assert pool.open_connections == 0


async def test_closed_pool_and_bad_targets_are_refused() -> None:
    pool = HttpPool("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="percent-encoded"):
        await pool.request("GET", "/a b")
    await pool.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.request("GET", "/")
    with pytest.raises(ValueError, match="http://host:port"):
        HttpPool("ftp://x")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (made by the openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_keeps_alive_and_checks_the_certificate(
    nursery: trio.Nursery, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    accepted = 0

    async def handler(stream: trio.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        tls = trio.SSLStream(stream, server_context, server_side=True)
        buffered = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffered:
                    data = await tls.receive_some(65536)
                    if not data:
                        return
                    buffered += data
                _, buffered = buffered.split(b"\r\n\r\n", 1)
                await tls.send_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                )
        except trio.BrokenResourceError:
            return

    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    port = listeners[0].socket.getsockname()[1]
    trusted = ssl.create_default_context(cafile=str(cert))
    async with HttpPool(f"https://localhost:{port}", ssl_context=trusted) as pool:
        bodies = [(await pool.request("GET", "/x")).body for _ in range(3)]
    assert bodies == [b"abc"] * 3
    assert accepted == 1
    async with HttpPool(f"https://localhost:{port}") as pool:  # system CAs only
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            await pool.request("GET", "/x")


@pytest.mark.slow
async def test_real_server_reuses_connections_and_reports_error_bodies(
    podium_server: PodiumServer,
) -> None:
    async with ConductorClient(podium_server.base_url) as client:
        for _ in range(5):
            await client.get_task_defs()
        with pytest.raises(ConductorApiError) as missing:
            await client.get_workflow("no-such-workflow")
        await client.get_task_defs()
        assert client.pool is not None
        assert client.pool.open_connections == 1  # the 404 kept the connection too
    assert missing.value.status == 404
    assert "no-such-workflow" in missing.value.message
    assert '"status":404' in missing.value.body.replace(" ", "")
    assert missing.value.retryable is False


@pytest.mark.slow
def test_client_under_asyncio_goes_through_httpx(podium_server: PodiumServer) -> None:
    async def use() -> tuple[int, str, bool]:
        async with ConductorClient(podium_server.base_url) as client:
            defs = await client.get_task_defs()
            try:
                await client.get_workflow("no-such-workflow")
            except ConductorApiError as exc:
                message = exc.message
            return len(defs), message, client.pool is None and client.http is not None

    _, message, via_httpx = asyncio.run(use())
    assert "no-such-workflow" in message
    assert via_httpx


@pytest.mark.slow
def test_asyncio_transport_errors_are_transport_errors() -> None:
    async def use() -> None:
        async with ConductorClient("http://127.0.0.1:9") as client:
            await client.get_task_defs()

    with pytest.raises(TransportError, match=r"GET http://127\.0\.0\.1:9/api/metadata/taskdefs"):
        asyncio.run(use())
