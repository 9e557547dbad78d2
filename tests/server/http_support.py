"""Helpers for the HTTP-layer tests: a raw loopback client and a response reader.

Rules: responses are parsed with httptools' *response* parser (a real protocol library,
independent of the server's request parsing), so the tests never hand-parse HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httptools
import msgspec
import trio

from core.errors import NotFound
from core.models import StartWorkflowRequest
from server.http import HttpConfig, HttpServer, Request, Response, Router, serve_http


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class _Collector:
    parser: httptools.HttpResponseParser | None = None
    done: list[RawResponse] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: list[bytes] = field(default_factory=list)

    def on_message_begin(self) -> None:
        self.headers = {}
        self.body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.parser is not None
        self.done.append(
            RawResponse(self.parser.get_status_code(), self.headers, b"".join(self.body))
        )


class RawClient:
    """A TCP client that writes raw bytes and reads whole responses back."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._collector = _Collector()
        self._collector.parser = httptools.HttpResponseParser(self._collector)
        self.eof = False

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def responses(self, count: int) -> list[RawResponse]:
        """Read until `count` responses arrived (fails the test after 10 s)."""
        collector = self._collector
        with trio.fail_after(10):
            while len(collector.done) < count:
                data = await self.stream.receive_some(65536)
                if not data:
                    self.eof = True
                    break
                collector.parser.feed_data(data)  # type: ignore[union-attr]
        out, collector.done[:] = collector.done[:count], collector.done[count:]
        assert len(out) == count, f"connection closed after {len(out)} of {count} responses"
        return out

    async def response(self) -> RawResponse:
        return (await self.responses(1))[0]

    async def read_to_eof(self) -> bytes:
        """Everything until the server closes; fails the test if it takes over 10 s."""
        chunks = []
        with trio.fail_after(10):
            while data := await self.stream.receive_some(65536):
                chunks.append(data)
        self.eof = True
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self.stream.aclose()


def get(path: str, *extra: str, method: str = "GET", body: bytes = b"") -> bytes:
    """A request's bytes: `extra` are header lines; Content-Length added for a body."""
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *extra]
    if body or method in ("POST", "PUT", "DELETE"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# -- a small application exercising the framework --------------------------------------


class Echo(msgspec.Struct):
    id: str
    include_tasks: bool
    query: dict[str, list[str]]


class AppState:
    """Events and records the test handlers share with the tests."""

    def __init__(self) -> None:
        self.poll_started = trio.Event()
        self.poll_finished = trio.Event()
        self.poll_release = trio.Event()
        self.poll_request: Request | None = None
        self.gate_entered = trio.Event()
        self.gate_release = trio.Event()
        self.gate_finished = trio.Event()
        self.bodies: list[bytes] = []


def build_router(state: AppState) -> Router:
    router = Router()

    async def get_workflow(request: Request) -> Response:
        wf = request.path_params["workflowId"]
        echo = Echo(wf, request.query_bool("includeTasks", True), request.query)
        return Response.json(echo)

    async def running(request: Request) -> Response:
        return Response.json({"running": request.path_params["name"]})

    async def pause(request: Request) -> Response:
        state.bodies.append(request.body)
        return Response.empty()

    async def terminate(request: Request) -> Response:
        state.bodies.append(request.body)
        request.query_bool("triggerFailureWorkflow", False)
        return Response.empty()

    async def start(request: Request) -> Response:
        body = request.json(StartWorkflowRequest)
        return Response.text(f"id-of-{body.name}")

    async def batch_poll(request: Request) -> Response:
        count = request.query_int("count", 1, minimum=1)
        timeout = request.query_int("timeout", 100)
        return Response.json(
            {"type": request.path_params["taskType"], "count": count, "timeout": timeout}
        )

    async def no_content(request: Request) -> Response:
        return Response.no_content()

    async def echo(request: Request) -> Response:
        return Response(200, request.body, content_type=b"application/octet-stream")

    async def boom(request: Request) -> Response:
        raise RuntimeError("secret internals")

    async def missing(request: Request) -> Response:
        raise NotFound(f"No such workflow found by id: {request.path_params['workflowId']}")

    async def long_poll(request: Request) -> Response:
        state.poll_request = request
        state.poll_started.set()
        try:
            await state.poll_release.wait()
            return Response.json({"released": True})
        finally:
            state.poll_finished.set()

    async def gate(request: Request) -> Response:
        state.gate_entered.set()
        try:
            await state.gate_release.wait()
            return Response.text("gate passed")
        finally:
            state.gate_finished.set()

    router.add("GET", "/api/workflow/{workflowId}", get_workflow)
    router.add("GET", "/api/workflow/running/{name}", running)
    router.add("PUT", "/api/workflow/{workflowId}/pause", pause)
    router.add("DELETE", "/api/workflow/{workflowId}", terminate)
    router.add("POST", "/api/workflow", start, body=StartWorkflowRequest, response=str)
    router.add("GET", "/api/tasks/poll/batch/{taskType}", batch_poll)
    router.add("GET", "/nc", no_content)
    router.add("POST", "/echo", echo)
    router.add("GET", "/boom", boom)
    router.add("GET", "/missing/{workflowId}", missing)
    router.add("GET", "/poll", long_poll, long_poll=True)
    # Watched only when the request asks to wait (like a batch poll's `timeout`).
    router.add(
        "GET", "/maybe-poll", long_poll, long_poll=lambda request: request.query_str("wait") == "1"
    )

    async def headers(request: Request) -> Response:
        return Response.json(request.headers)

    async def big(request: Request) -> Response:
        # Larger than a loopback socket's send buffer: written in several parts.
        return Response(200, bytes(range(256)) * 32768, content_type=b"application/octet-stream")

    router.add("GET", "/gate", gate)
    router.add("GET", "/headers", headers)
    router.add("GET", "/big", big)
    return router


async def start_server(nursery: trio.Nursery, state: AppState, **config: Any) -> HttpServer:
    """Serve the test application on a free loopback port."""
    router = build_router(state)
    server: HttpServer = await nursery.start(
        partial(serve_http, router, "127.0.0.1", 0, config=HttpConfig(**config))
    )
    return server
