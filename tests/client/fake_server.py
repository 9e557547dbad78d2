"""A tiny fake of Podium's worker endpoints, served with trio + h11 on loopback.

For the client's unit tests only (end-to-end tests use a real `podium server`). It keeps
task queues in memory, long-polls like the real server, records every request, and can
be told to misbehave: answer N updates with 503, reset N connections, lack update-v2.
Routes it does not simulate are answered from `canned` ((method, path) -> (status, body)).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import trio

from tests.client.h11_reading import read_request


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def make_task(
    task_type: str, input_data: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """A polled task as the server sends it (IN_PROGRESS, fresh ids)."""
    task = {
        "taskType": task_type,
        "status": "SCHEDULED",
        "referenceTaskName": f"{task_type}_ref",
        "taskId": str(uuid.uuid4()),
        "workflowInstanceId": str(uuid.uuid4()),
        "inputData": input_data or {},
        "pollCount": 0,
    }
    task.update(extra)
    return task


@dataclass
class FakeConductor:
    queues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    canned: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    fail_updates: int = 0  # answer this many updates with 503 (not recorded)
    reset_polls: int = 0  # close this many poll connections without an answer
    v2_enabled: bool = True
    overdeliver: int = 0  # hand out this many tasks more than asked, on the next poll
    types: dict[str, str] = field(default_factory=dict)  # task id -> type, set on poll
    port: int = 0
    _arrived: trio.Event = field(default_factory=trio.Event)
    _nursery: trio.Nursery | None = None
    on_result: Callable[[dict[str, Any]], None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, task: dict[str, Any]) -> None:
        self.queues.setdefault(task["taskType"], []).append(task)
        self._arrived.set()
        self._arrived = trio.Event()

    def _pop(self, task_type: str, count: int, worker_id: str | None) -> list[dict[str, Any]]:
        queue = self.queues.get(task_type, [])
        out = queue[:count]
        del queue[:count]
        for task in out:
            task["status"] = "IN_PROGRESS"
            task["pollCount"] = task.get("pollCount", 0) + 1
            task["workerId"] = worker_id
            self.types[task["taskId"]] = task_type
        return out

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.serve_listeners(self._connection, listeners, handler_nursery=nursery)

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(conn, stream)
                if request is None:
                    return
                self.requests.append(request)
                answer = await self._handle(request)
                if answer is None:  # deliberate reset
                    await stream.aclose()
                    return
                status, body, ctype = answer
                headers = [("content-length", str(len(body)))]
                if body:
                    headers.append(("content-type", ctype))
                await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)))
                await stream.send_all(conn.send(h11.Data(data=body)) or b"")
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
                if conn.our_state is h11.MUST_CLOSE:
                    await stream.aclose()
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return

    async def _read_request(
        self, conn: h11.Connection, stream: trio.SocketStream
    ) -> Request | None:
        read = await read_request(conn, stream)
        if read is None:
            return None
        head, body = read
        parts = urlsplit(head.target.decode())
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        headers = {k.decode().lower(): v.decode() for k, v in head.headers}
        return Request(head.method.decode(), parts.path, query, headers, body)

    async def _handle(self, req: Request) -> tuple[int, bytes, str] | None:
        path = req.path
        if req.method == "GET" and path.startswith("/api/tasks/poll/batch/"):
            return await self._batch_poll(req, path.rsplit("/", 1)[1])
        if req.method == "POST" and path == "/api/tasks/update-v2":
            if not self.v2_enabled:
                return 404, b'{"status":404,"message":"no update-v2 here"}', "application/json"
            return self._update(req, v2=True)
        if req.method == "POST" and path == "/api/tasks":
            return self._update(req, v2=False)
        status, body = self.canned.get(
            (req.method, path), (404, b'{"status":404,"message":"no route"}')
        )
        return status, body, "application/json"

    async def _batch_poll(self, req: Request, task_type: str) -> tuple[int, bytes, str] | None:
        if self.reset_polls > 0:
            self.reset_polls -= 1
            return None
        count = int(req.query.get("count", "1")) + self.overdeliver
        self.overdeliver = 0
        deadline = trio.current_time() + int(req.query.get("timeout", "100")) / 1000
        while True:
            got = self._pop(task_type, count, req.query.get("workerid"))
            if got or trio.current_time() >= deadline:
                return 200, json.dumps(got).encode(), "application/json"
            with trio.move_on_at(deadline):
                await self._arrived.wait()

    def _update(self, req: Request, *, v2: bool) -> tuple[int, bytes, str]:
        if self.fail_updates > 0:
            self.fail_updates -= 1
            return 503, b'{"status":503,"message":"try later","retryable":true}', "application/json"
        result = req.json()
        result["_via"] = "v2" if v2 else "v1"
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)
        if not v2:
            return 200, result["taskId"].encode(), "text/plain"
        task_type = self.types.get(result["taskId"])
        nxt = self._pop(task_type, 1, result.get("workerId")) if task_type else []
        if nxt:
            return 200, json.dumps(nxt[0]).encode(), "application/json"
        return 204, b"", "application/json"
