"""A lean HTTP/1.1 client transport on trio: a pool of keep-alive connections to one origin.

Rules:
- One `HttpPool` per origin (`http://host:port` or `https://...`). Idle connections sit on
  a LIFO free list: taking one and giving it back is O(1), whatever the pool's size (no
  scan of every pooled connection per request). At most `max_connections` are open at
  once; a request beyond that waits until one is given back or dropped.
- A request is rendered as bytes (request line, Host, the caller's headers,
  Content-Length when there is a body) and written at once; the answer is parsed by
  httptools (llhttp): Content-Length, chunked and close-delimited bodies. Nothing here
  parses HTTP by hand. Interim 1xx answers are skipped; HEAD and Upgrade are not supported.
- A connection is reused unless its answer said `connection: close` (or was an HTTP/1.0
  answer without keep-alive), ran until EOF, carried bytes past its end, or anything
  failed on it (then it is closed).
- One deadline per request (`timeout_s`) covers waiting for a connection, connecting,
  sending and the whole answer; past it the connection is closed and `TransportTimeout`
  raised. No background task, no per-connection timer.
- An idle connection is checked (one non-blocking poll of its socket) before reuse once
  it has been idle `IDLE_CHECK_S`; one the server closed meanwhile is dropped. If a reused
  connection still dies before the first byte of the answer (the server closed it just
  then), a `retry_safe` request (by default the idempotent methods) is sent once more on
  a new connection; any other request raises, since the server may have acted on it.
- Every way of getting no complete answer (refused, reset, EOF, malformed answer,
  timeout) raises `TransportError`, naming the request and the cause; any parsed answer
  is returned as a `Response`, whatever its status.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from time import monotonic
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import httptools
import trio

__all__ = ["IDLE_CHECK_S", "HttpPool", "Response", "TransportError", "TransportTimeout"]

#: Seconds a connection may sit idle before it is checked (one poll) on reuse.
IDLE_CHECK_S = 1.0
RECEIVE_SIZE = 64 * 1024
_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "OPTIONS"})
_FAILURES = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, httptools.HttpParserError)
_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable


class TransportError(Exception):
    """No complete answer: the connection was refused, reset or closed, the answer was
    malformed, or it did not come in time.

    Attributes:
        method: the request's method.
        url: the request's URL.
    """

    def __init__(self, method: str, url: str, problem: str) -> None:
        super().__init__(f"{method} {url}: {problem}")
        self.method = method
        self.url = url


class TransportTimeout(TransportError):
    """The request's deadline passed before its answer was complete."""


class Response:
    """One parsed answer.

    Attributes:
        status: the status code.
        reason: the reason phrase ("" when the server sent none).
        headers: (name, value) pairs as sent, in order.
        body: the body, de-chunked.
    """

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(
        self, status: int, reason: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        """The last value of a header (case-insensitive), or None."""
        key = name.lower().encode("latin-1")
        found = None
        for k, v in self.headers:
            if k.lower() == key:
                found = v.decode("latin-1")
        return found


class _Failed(Exception):
    """Internal: an exchange failed; `answered` says whether any answer byte arrived."""

    def __init__(self, cause: BaseException | str, answered: bool) -> None:
        super().__init__(cause)
        self.cause = cause
        self.answered = answered


class _Connection:
    """One keep-alive connection; the `on_*` methods are httptools' callbacks."""

    __slots__ = (
        "_body",
        "_complete",
        "_extra",
        "_headers",
        "_headers_done",
        "_keep",
        "_parser",
        "_reason",
        "_sock",
        "_status",
        "_tls",
        "idle_since",
        "reused",
    )

    def __init__(
        self, sock: socket.socket | None, tls: trio.SSLStream[trio.SocketStream] | None
    ) -> None:
        self._sock = sock  # the plain connection's socket (None with TLS)
        self._tls = tls
        self._parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.reused = False
        self._begin()

    def _begin(self) -> None:
        self._status = 0
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._headers_done = False
        self._complete = False
        self._keep = False
        self._extra = False

    # -- httptools callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:  # bytes past the answer we asked for
            self._extra = True

    def on_status(self, data: bytes) -> None:
        self._reason += data

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._status = self._parser.get_status_code()

    def on_body(self, data: bytes) -> None:
        self._body.append(data)

    def on_message_complete(self) -> None:
        if self._complete:
            self._extra = True
        elif self._status < 200:  # an interim answer (100 Continue, 103 ...): skip it
            self._begin()
        else:
            self._complete = True
            # Asked here: once the callback returns, llhttp has reset for the next message.
            self._keep = self._parser.should_keep_alive()

    # -- IO -------------------------------------------------------------------------------

    async def exchange(self, data: bytes) -> tuple[Response, bool]:
        """Send one request and read its answer; returns it and whether to keep the
        connection. Raises _Failed on any failure."""
        self._begin()
        answered = False
        parser = self._parser
        sock, tls = self._sock, self._tls
        try:
            # Plain sockets are driven directly (non-blocking stdlib calls, trio's IO waits
            # only when the kernel says "not yet"): one scheduler pass per answer, where
            # trio's socket methods take three (a checkpoint after each call).
            if tls is not None:
                await tls.send_all(data)
            else:
                assert sock is not None
                await self._send(sock, data)
            while not self._complete:
                if tls is not None:
                    chunk = await tls.receive_some(RECEIVE_SIZE)
                else:
                    assert sock is not None
                    await _wait_readable(sock)
                    try:
                        chunk = sock.recv(RECEIVE_SIZE)
                    except BlockingIOError:  # a spurious wake-up
                        continue
                if not chunk:
                    if self._ends_at_eof():
                        return self._response(), False
                    raise _Failed("the server closed the connection", answered)
                answered = True
                parser.feed_data(chunk)
        except _FAILURES as exc:
            raise _Failed(exc, answered) from exc
        return self._response(), self._keep and not self._extra

    @staticmethod
    async def _send(sock: socket.socket, data: bytes) -> None:
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            view = memoryview(data)
            while sent < len(data):
                await _wait_writable(sock)
                with contextlib.suppress(BlockingIOError):  # a spurious wake-up
                    sent += sock.send(view[sent:])

    def _ends_at_eof(self) -> bool:
        """At EOF: true when the answer's body was delimited by the close (no length)."""
        if not self._headers_done or self._status in (204, 304):
            return False
        names = {name.lower() for name, _ in self._headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _response(self) -> Response:
        return Response(
            self._status,
            self._reason.decode("latin-1"),
            self._headers,
            self._body[0] if len(self._body) == 1 else b"".join(self._body),
        )

    def stale(self) -> bool:
        """True when an idle connection is readable: the server closed it (or sent
        something unasked), so it must not carry a request."""
        if self._tls is not None:
            return self._tls.transport_stream.socket.is_readable()
        assert self._sock is not None
        try:
            self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False  # nothing to read: alive and quiet
        except OSError:
            return True
        return True  # EOF, or bytes nobody asked for

    def close(self) -> None:
        """Close the socket at once (no TLS close_notify: the peer may be gone)."""
        if self._tls is not None:
            self._tls.transport_stream.socket.close()
        elif self._sock is not None:
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()


class HttpPool:
    """Keep-alive HTTP/1.1 connections to one origin, for trio.

    Use it as an async context manager, or call `aclose()` when done.

    Args:
        origin: `http://host[:port]` or `https://host[:port]` (any path is ignored).
        max_connections: the most connections open at once.
        ssl_context: for https; the default context (system CAs) when omitted.
    """

    def __init__(
        self,
        origin: str,
        *,
        max_connections: int = 100,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"origin {origin!r} must look like http://host:port")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.origin = f"{parts.scheme}://{host}" + ("" if default_port else f":{self.port}")
        self._host_line = f"Host: {host}{'' if default_port else f':{self.port}'}\r\n"
        self._ssl_context = ssl_context
        self._max = max_connections
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters = trio.lowlevel.ParkingLot()
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open now (idle or carrying a request)."""
        return self._open

    @property
    def idle_connections(self) -> int:
        """Connections open and idle now."""
        return len(self._idle)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every idle connection; busy ones are closed when their request ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._drop(conn)
        await trio.lowlevel.checkpoint()

    async def request(
        self,
        method: str,
        target: str,
        *,
        headers: str = "",
        body: bytes | None = None,
        timeout_s: float = 30.0,
        retry_safe: bool | None = None,
    ) -> Response:
        """Send one request and return its answer (any status).

        Args:
            method: GET, POST, PUT, DELETE, ... (not HEAD).
            target: the path and query, already percent-encoded (`/api/x?y=1`).
            headers: extra header lines, each ending in CRLF (`Accept: text/plain\\r\\n`);
                Host and Content-Length are added here.
            body: the request body, if any.
            timeout_s: the deadline for the whole exchange.
            retry_safe: may the request be sent twice (see the module rules); by default
                true for GET, PUT, DELETE and OPTIONS.

        Raises:
            TransportError: no complete answer (TransportTimeout when out of time).
            RuntimeError: the pool is closed.
        """
        if self._closed:
            raise RuntimeError("this HttpPool is closed; create a new one")
        if "\n" in target or "\r" in target or " " in target:
            raise ValueError(f"request target {target!r} must be percent-encoded")
        if method == "HEAD":
            raise ValueError("HttpPool does not send HEAD requests")
        if body is None:
            head = f"{method} {target} HTTP/1.1\r\n{self._host_line}{headers}\r\n"
            data = head.encode("latin-1")
        else:
            head = (
                f"{method} {target} HTTP/1.1\r\n{self._host_line}{headers}"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            data = head.encode("latin-1") + body
        if retry_safe is None:
            retry_safe = method in _IDEMPOTENT
        # A bare CancelScope: move_on_after adds a generator context manager per request.
        with trio.CancelScope(deadline=trio.current_time() + timeout_s):
            conn = await self._take(method, target)
            try:
                response, keep = await conn.exchange(data)
            except _Failed as failed:
                self._drop(conn)
                if failed.answered or not conn.reused or not retry_safe:
                    raise self._error(method, target, failed.cause) from failed.__cause__
                # A reused connection the server had closed: once more on a new one.
                conn = await self._take(method, target, fresh=True)
                try:
                    response, keep = await conn.exchange(data)
                except _Failed as again:
                    self._drop(conn)
                    raise self._error(method, target, again.cause) from again.__cause__
                except BaseException:
                    self._drop(conn)
                    raise
            except BaseException:  # cancelled (the deadline or the caller)
                self._drop(conn)
                raise
            if keep:
                self._give_back(conn)
            else:
                self._drop(conn)
            return response
        raise TransportTimeout(
            method, self.origin + target, f"no complete answer within {timeout_s:g} s"
        )

    def _error(self, method: str, target: str, cause: BaseException | str) -> TransportError:
        if isinstance(cause, trio.BrokenResourceError) and cause.__cause__ is not None:
            cause = cause.__cause__  # what broke the stream (an SSL error, a reset, ...)
        if isinstance(cause, str):
            problem = cause
        elif isinstance(cause, httptools.HttpParserError):
            problem = f"malformed answer ({cause})"
        else:
            problem = str(cause) or type(cause).__name__
            if isinstance(cause, OSError) and cause.strerror:
                problem = cause.strerror
        return TransportError(method, self.origin + target, problem)

    # -- the free list --------------------------------------------------------------------

    async def _take(self, method: str, target: str, *, fresh: bool = False) -> _Connection:
        idle = self._idle
        while True:
            while idle and not fresh:
                conn = idle.pop()
                if monotonic() - conn.idle_since >= IDLE_CHECK_S and conn.stale():
                    self._drop(conn)
                    continue
                conn.reused = True
                return conn
            if self._open < self._max:
                break
            if fresh and idle:  # make room for the new connection
                self._drop(idle.pop(0))
                break
            await self._waiters.park()
        self._open += 1
        try:
            return await self._connect()
        except BaseException as exc:
            self._open -= 1
            self._waiters.unpark()
            if isinstance(exc, _FAILURES):
                raise self._error(method, target, exc) from exc
            raise

    async def _connect(self) -> _Connection:
        stream = await trio.open_tcp_stream(self.host, self.port)
        if not self.tls:
            # Take the connected socket out of trio's wrapper (see _Connection.exchange).
            tsock = stream.socket
            family, type_, proto = tsock.family, tsock.type, tsock.proto
            sock = socket.socket(family, type_, proto, fileno=tsock.detach())
            sock.setblocking(False)
            return _Connection(sock, None)
        context = self._ssl_context or ssl.create_default_context()
        tls = trio.SSLStream(stream, context, server_hostname=self.host, https_compatible=True)
        try:
            await tls.do_handshake()
        except BaseException:
            stream.socket.close()
            raise
        return _Connection(None, tls)

    def _give_back(self, conn: _Connection) -> None:
        if self._closed:
            self._drop(conn)
            return
        conn.idle_since = monotonic()
        self._idle.append(conn)
        if self._waiters:
            self._waiters.unpark()

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1
        if self._waiters:
            self._waiters.unpark()
