"""One HTTP/1.1 connection: parse with httptools (llhttp), route, call, write, repeat.

Rules:
- One trio task per connection runs requests strictly in order; pipelined requests are
  parsed ahead and queued, and reading stops while any complete request is queued (so a
  pipelining client cannot make the server buffer without bound).
- Timeouts cost nothing per request: the connection stores the deadline of the socket
  operation it is blocked on (infinity while a handler runs) and the server's reaper,
  once a second, cancels the connection's single cancel scope when that deadline passed.
  Idle keep-alive (75 s by default), header, body and write timeouts all work that way.
- A handler never sees a timeout; while a handler of a route registered with
  `long_poll=True` runs, the socket is watched (server/http/peer_watch.py, one task for
  every connection; streams without a file descriptor get a reading task of their own):
  EOF or a reset sets `request.disconnected` and cancels the handler; bytes read
  meanwhile (pipelining) are buffered and parsed after the response. EOF counts as a
  disconnect even if the client only half-closed (HTTP clients do not half-close while
  awaiting a response).
- The server closes gracefully: `connection: close` on the last response, then shut down
  the write side and read-and-discard for a moment, so the close is never a reset. An idle
  connection is closed only after the keep-alive timeout or on shutdown.
- Malformed requests get 400, oversized ones 413 (body) or 431 (headers), a request not
  finished in time 408; each of these closes the connection after the response.
- Responses always carry `content-length` (except 1xx/204/304). `Expect: 100-continue`
  is answered when the server is about to read the body. HEAD gets the GET's headers.
- On a TCP socket (trio.SocketStream) reads and writes go to the file descriptor: a read
  waits for readability first (after a response the next request is rarely there yet, so
  trying first would cost a failed recv), a write that fits the socket buffer is one
  write() with no scheduling point. Each read is one scheduling point; requests already
  parsed ahead (pipelining) yield once each between them, so a connection never keeps
  the loop to itself. Other streams (tests' memory streams) use the Stream methods.
"""

from __future__ import annotations

import errno
import logging
import math
import os
from collections import deque
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING

import httptools
import trio

from server.http.config import HttpConfig
from server.http.errors import (
    ExpectationFailed,
    HeaderFieldsTooLarge,
    HttpError,
    MalformedRequest,
    PayloadTooLarge,
    RequestTimeout,
    error_response,
)
from server.http.request import Request
from server.http.response import CONTINUE, Response, serialize
from server.http.router import Route, Router

if TYPE_CHECKING:
    from server.http.metrics import HttpMetrics
    from server.http.server import ConnectionTracker

log = logging.getLogger("podium.http")

RECEIVE_SIZE = 64 * 1024
INF = math.inf

# What the connection was blocked on when its deadline passed.
_IDLE, _READING, _WRITING = 1, 2, 3


class HttpConnection:
    """Serves one client connection; `await run()` returns when it is closed.

    The `on_*` methods are httptools' parser callbacks; they only collect data and queue
    finished requests, the loop in `_serve` does all the IO.
    """

    def __init__(
        self,
        stream: trio.abc.HalfCloseableStream,
        router: Router,
        config: HttpConfig,
        tracker: ConnectionTracker | None = None,
        metrics: HttpMetrics | None = None,
    ) -> None:
        self._stream = stream
        self._fd = -1
        self._receive: Callable[[], Awaitable[bytes | bytearray]]
        self._send: Callable[[bytes], Awaitable[None]]
        if isinstance(stream, trio.SocketStream):
            self._fd = stream.socket.fileno()
            self._receive = self._receive_fd
            self._send = self._send_fd
        else:
            self._receive = self._receive_stream
            self._send = stream.send_all
        self._metrics = metrics
        self._router = router
        self._config = config
        self._tracker = tracker
        self._parser = httptools.HttpRequestParser(self)
        self._scope = trio.CancelScope()
        self._queue: deque[Request] = deque()
        self._pending = bytearray()  # read by the long-poll watcher, not parsed yet
        # the message being parsed
        self._in_message = False
        self._headers_done = False
        self._url_parts: list[bytes] = []
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._body_parts: list[bytes] = []
        self._body_size = 0
        self._header_bytes = 0
        self._raw_header_bytes = 0
        self._header_deadline = INF
        self._expect_continue = False
        # connection state
        self._reject: HttpError | None = None  # answer after the queue, then close
        self._upgrade = False
        self._peer_gone = False
        self._expired = 0  # _IDLE/_READING/_WRITING when the reaper cancelled us
        self._blocked = 0  # what the current deadline guards
        self.deadline = INF
        self.closing = False

    # -- lifecycle driven by the tracker ----------------------------------------------

    def expire(self) -> None:
        """The deadline passed (called by the reaper): stop what is blocked."""
        self._expired = self._blocked
        self._scope.cancel()

    def begin_shutdown(self) -> None:
        """Finish the request in progress with `connection: close`; close if idle."""
        self.closing = True
        if self._blocked == _IDLE:
            self._scope.cancel()

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Serve requests until the client or the server ends the connection."""
        graceful = False
        try:
            with self._scope:
                await self._serve()
            graceful = self._expired != _WRITING and not self._peer_gone
            if graceful and self._expired == _READING and self._in_message:
                # Best effort: the client is stalling mid-request; say why we hang up.
                await self._answer_last(RequestTimeout("Request not completed in time"))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            graceful = False
        except Exception:
            log.exception("HTTP connection loop failed")
            graceful = False
        finally:
            if graceful:
                await self._close_gracefully()
            else:
                await trio.aclose_forcefully(self._stream)

    async def _serve(self) -> None:
        queue = self._queue
        receive = self._receive
        while True:
            if queue:
                if not await self._respond(queue.popleft()):
                    return
                while queue:
                    # Pipelined requests: let other tasks run between them.
                    await trio.lowlevel.checkpoint()
                    if not await self._respond(queue.popleft()):
                        return
            if self._reject is not None:
                await self._answer_last(self._reject)
                return
            if self._upgrade or self._peer_gone or (self.closing and not self._in_message):
                return
            data: bytes | bytearray
            if self._pending:
                data = bytes(self._pending)
                self._pending.clear()
            else:
                if self._expect_continue and self._headers_done:
                    self._expect_continue = False
                    await self._write(CONTINUE)
                self._arm_read_deadline()
                data = await receive()
                self._blocked = 0
                self.deadline = INF
                if not data:
                    # EOF: nothing more will arrive, so there is nobody left to answer.
                    self._peer_gone = True
                    return
            self._feed(data)

    def _arm_read_deadline(self) -> None:
        now = trio.current_time()
        config = self._config
        if not self._in_message:
            self._blocked = _IDLE
            self.deadline = now + config.keepalive_timeout
        elif not self._headers_done:
            self._blocked = _READING
            if self._header_deadline == INF:
                self._header_deadline = now + config.header_timeout
            self.deadline = self._header_deadline
        else:
            self._blocked = _READING
            self.deadline = now + config.body_timeout

    def _feed(self, data: bytes | bytearray) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, HttpError):
                self._reject = cause
            else:
                log.error("HTTP parser callback failed", exc_info=cause)
                self._reject = MalformedRequest("Malformed HTTP request")
        except httptools.HttpParserUpgrade:
            # Podium speaks only HTTP/1.1: the upgrade request is answered normally and
            # the connection closes, since the parser cannot continue past an upgrade.
            self._upgrade = True
        except httptools.HttpParserError as exc:
            self._reject = MalformedRequest(f"Malformed HTTP request: {exc}")
        if self._in_message and not self._headers_done and self._reject is None:
            # httptools buffers an unfinished header line itself; bound that buffer too.
            self._raw_header_bytes += len(data)
            if self._raw_header_bytes > 2 * self._config.max_header_bytes + RECEIVE_SIZE:
                self._reject = self._headers_too_large()

    async def _respond(self, request: Request) -> bool:
        """Route and run one request, write its response; False ends the connection."""
        started = perf_counter() if self._metrics is not None else 0.0
        template = "none"
        try:
            route, params = self._router.resolve(request.method, request.path)
        except Exception as exc:
            response = error_response(exc, instance=self._config.instance)
        else:
            template = route.template
            request.path_params = params
            long_poll = route.long_poll
            if long_poll is True or (long_poll and long_poll(request)):
                watched = await self._call_watched(route, request)
                if watched is None:
                    return False
                response = watched
            else:
                try:
                    response = await route.handler(request)
                except Exception as exc:
                    response = error_response(exc, instance=self._config.instance)
        # On shutdown or after an upgrade request, close after the last parsed request;
        # requests pipelined before that point are still answered.
        keep_alive = request.keep_alive and (
            bool(self._queue) or not (self.closing or self._upgrade)
        )
        head_only = request.method == "HEAD"
        http10 = request.http_version == "1.0"
        try:
            data = serialize(response, head_only=head_only, keep_alive=keep_alive, http10=http10)
        except Exception as exc:
            data = serialize(
                error_response(exc, instance=self._config.instance),
                head_only=head_only,
                keep_alive=keep_alive,
                http10=http10,
            )
        await self._write(data)
        if self._metrics is not None:
            self._metrics.observe(
                request.method, template, response.status, perf_counter() - started
            )
        return keep_alive

    async def _call_watched(self, route: Route, request: Request) -> Response | None:
        """Run a long-poll handler; None if the client went away (handler cancelled)."""
        peers = self._tracker.peers if self._tracker is not None else None
        if peers is None or self._fd < 0 or not peers.open:
            return await self._call_watched_by_task(route, request)
        scope = trio.CancelScope()
        fd = self._fd

        def on_readable() -> None:
            # The server's PeerWatcher calls this when the socket has data or EOF.
            try:
                data = os.read(fd, RECEIVE_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                self._pending += data  # pipelined: parsed after the response
                if len(self._pending) >= self._config.max_buffered_bytes:
                    peers.unwatch(fd)  # enough read ahead; stop watching
                return
            peers.unwatch(fd)
            self._peer_left(request, scope)

        response: Response | None = None
        peers.watch(fd, on_readable)
        try:
            with scope:
                try:
                    response = await route.handler(request)
                except Exception as exc:
                    response = error_response(exc, instance=self._config.instance)
        finally:
            peers.unwatch(fd)
        return None if self._peer_gone else response

    async def _call_watched_by_task(self, route: Route, request: Request) -> Response | None:
        """`_call_watched` for a stream with no file descriptor: a task reads it."""
        response: Response | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_peer, nursery.cancel_scope, request)
            try:
                response = await route.handler(request)
            except Exception as exc:
                response = error_response(exc, instance=self._config.instance)
            nursery.cancel_scope.cancel()
        return None if self._peer_gone else response

    async def _watch_peer(self, handler_scope: trio.CancelScope, request: Request) -> None:
        # trio's receive_some is atomic under cancellation: when the handler finishes and
        # this task is cancelled, no byte read from the socket is lost.
        try:
            while len(self._pending) < self._config.max_buffered_bytes:
                data = await self._receive()
                if not data:
                    break
                self._pending += data
            else:
                await trio.sleep_forever()  # enough read ahead; stop watching
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self._peer_left(request, handler_scope)

    def _peer_left(self, request: Request, handler_scope: trio.CancelScope) -> None:
        """The client went away (EOF or a reset) while a long-poll handler ran."""
        self._peer_gone = True
        request.disconnected.set()
        handler_scope.cancel()

    async def _write(self, data: bytes) -> None:
        fd = self._fd
        if fd >= 0:
            # Most responses fit the socket buffer: one write(), no deadline to arm.
            try:
                sent = os.write(fd, data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise _broken(exc) from exc
            if sent == len(data):
                return
            data = data[sent:]
        self._blocked = _WRITING
        self.deadline = trio.current_time() + self._config.write_timeout
        await self._send(data)
        self._blocked = 0
        self.deadline = INF

    # -- socket IO --------------------------------------------------------------------

    async def _receive_stream(self) -> bytes | bytearray:
        return await self._stream.receive_some(RECEIVE_SIZE)

    async def _receive_fd(self) -> bytes:
        # Wait first, then read: see the module rules. trio's receive_some is atomic
        # under cancellation and so is this (nothing is read before the wait returns).
        fd = self._fd
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                return os.read(fd, RECEIVE_SIZE)
            except BlockingIOError:
                continue  # woken without data after all
            except OSError as exc:
                raise _broken(exc) from exc

    async def _send_fd(self, data: bytes) -> None:
        fd = self._fd
        view: memoryview | None = None
        while True:
            try:
                sent = os.write(fd, data if view is None else view)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise _broken(exc) from exc
            if view is None:
                if sent == len(data):
                    return
                view = memoryview(data)
            view = view[sent:]
            if not view:
                return
            await trio.lowlevel.wait_writable(fd)

    async def _answer_last(self, error: HttpError) -> None:
        response = error_response(error, instance=self._config.instance)
        with trio.move_on_after(self._config.linger_timeout):
            await self._stream.send_all(serialize(response, head_only=False, keep_alive=False))

    async def _close_gracefully(self) -> None:
        # Half-close, then drain: closing a socket with unread input makes the kernel
        # send a reset, which the SDK turns into failures of unrelated requests.
        stream = self._stream
        try:
            with trio.move_on_after(self._config.linger_timeout):
                await stream.send_eof()
                while await stream.receive_some(RECEIVE_SIZE):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            # also when the server itself is being cancelled
            await trio.aclose_forcefully(stream)

    def _headers_too_large(self) -> HeaderFieldsTooLarge:
        return HeaderFieldsTooLarge(
            f"Request line and headers exceed {self._config.max_header_bytes} bytes"
        )

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        self._headers_done = False
        self._url_parts = []
        self._raw_headers = []
        self._body_parts = []
        self._body_size = 0
        self._header_bytes = 0
        self._raw_header_bytes = 0
        self._header_deadline = INF

    def on_url(self, url: bytes) -> None:
        self._url_parts.append(url)
        self._header_bytes += len(url)
        if self._header_bytes > self._config.max_header_bytes:
            raise self._headers_too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        # Kept raw: the Request decodes them only if a handler reads `headers`.
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self._config.max_header_bytes:
            raise self._headers_too_large()
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        lengths: list[bytes] = []
        expects: list[bytes] = []
        for name, value in self._raw_headers:
            size = len(name)
            if size == 14 or size == 6:  # len("content-length"), len("expect")
                key = name.lower()
                if key == b"content-length":
                    lengths.append(value)
                elif key == b"expect":
                    expects.append(value)
        if lengths:
            length = b", ".join(lengths).decode("latin-1")
            try:
                declared = int(length)
            except ValueError:
                raise MalformedRequest(f"Invalid Content-Length {length!r}") from None
            if declared > self._config.max_body_bytes:
                raise self._body_too_large()
        if expects:
            expect = b", ".join(expects).decode("latin-1")
            if expect.lower() != "100-continue":
                raise ExpectationFailed(expect)
            self._expect_continue = True

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._config.max_body_bytes:
            raise self._body_too_large()
        self._body_parts.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        parts = self._url_parts
        url = parts[0] if len(parts) == 1 else b"".join(parts)
        if url[:1] != b"/":
            url = _origin_form(url)
        path, _, query = url.partition(b"?")
        if b"#" in query:
            query = query.partition(b"#")[0]
        bodies = self._body_parts
        body = b"" if not bodies else bodies[0] if len(bodies) == 1 else b"".join(bodies)
        self._queue.append(
            Request(
                parser.get_method().decode("ascii"),
                path.decode("latin-1"),
                query.decode("latin-1"),
                None,
                body,
                keep_alive=parser.should_keep_alive(),
                http_version=parser.get_http_version(),
                raw_headers=self._raw_headers,
            )
        )
        self._in_message = False
        self._expect_continue = False

    def _body_too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Request body exceeds {self._config.max_body_bytes} bytes; send less data"
        )


def _broken(exc: OSError) -> trio.BrokenResourceError | trio.ClosedResourceError:
    # The same exceptions trio's SocketStream raises for these failures.
    if exc.errno == errno.EBADF:
        return trio.ClosedResourceError("the connection's socket was closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")


def _origin_form(url: bytes) -> bytes:
    # Absolute-form targets (`GET http://host/path`) are rare; reduce them to path+query.
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        return url  # routed as given: no route matches, so it becomes a 404
    path = parsed.path or b"/"
    return path + b"?" + parsed.query if parsed.query else path
