"""HTTP tasks against a real loopback server, and event handlers driving workflows."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import h11
import trio

from core import codec
from core.enums import TaskStatus, WorkflowStatus
from core.models import EventHandler
from server.engine import EngineConfig
from server.stores.memory import MemoryStore
from tests.server.engine_helpers import register, running_engine, start, wf_def


async def _serve_one(stream: trio.SocketStream, seen: list[dict[str, Any]]) -> None:
    conn = h11.Connection(h11.SERVER)
    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
    assert request is not None
    seen.append(
        {
            "method": request.method.decode(),
            "target": request.target.decode(),
            "headers": {k.decode(): v.decode() for k, v in request.headers},
            "header_list": [(k.decode(), v.decode()) for k, v in request.headers],
            "body": body,
        }
    )
    if request.target == b"/missing":
        status, reason, payload = 404, b"Not Found", b'{"error": "nope"}'
    else:
        echo = json.loads(body) if body else None
        status, reason, payload = 200, b"OK", json.dumps({"echo": echo, "ok": True}).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
    await stream.send_all(
        conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
    )
    await stream.send_all(conn.send(h11.Data(data=payload)))
    await stream.send_all(conn.send(h11.EndOfMessage()))
    await stream.aclose()


def _http_task(ref: str, uri: str, **request: Any) -> dict[str, Any]:
    return {
        "name": ref,
        "taskReferenceName": ref,
        "type": "HTTP",
        "inputParameters": {"http_request": {"uri": uri, **request}},
    }


async def _wait_for_end(engine: Any, wf_id: str) -> Any:
    with trio.fail_after(10):
        while True:
            workflow = await engine.get_workflow(wf_id)
            if workflow.status is not WorkflowStatus.RUNNING:
                return workflow
            await trio.sleep(0.01)


async def test_http_task_on_loopback() -> None:
    seen: list[dict[str, Any]] = []

    async def handler(stream: trio.SocketStream) -> None:
        await _serve_one(stream, seen)

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        async with running_engine() as engine:
            await register(
                engine,
                wf_def(
                    "http_wf",
                    [
                        _http_task(
                            "call",
                            f"{base}/echo",
                            method="POST",
                            body={"n": "${workflow.input.n}"},
                            headers={"X-Trace": "t1", "X-Multi": ["a", "b"], "X-Num": 5},
                        )
                    ],
                    outputParameters={"status": "${call.output.response.statusCode}"},
                ),
                wf_def("http_fail", [_http_task("bad", f"{base}/missing", method="GET")]),
            )
            wf_id = await start(engine, "http_wf", {"n": 7})
            workflow = await _wait_for_end(engine, wf_id)
            assert workflow.status is WorkflowStatus.COMPLETED
            response = workflow.tasks[0].output_data["response"]
            assert response["statusCode"] == 200
            assert response["reasonPhrase"] == "OK"
            assert response["body"] == {"echo": {"n": 7}, "ok": True}
            assert response["headers"]["content-type"] == ["application/json"]
            assert workflow.output == {"status": 200}
            assert seen[0]["method"] == "POST"
            assert seen[0]["headers"]["x-trace"] == "t1"
            # A list value is one header line per item; numbers as Java renders them.
            header_list = seen[0]["header_list"]
            assert [v for k, v in header_list if k == "x-multi"] == ["a", "b"]
            assert [v for k, v in header_list if k == "x-num"] == ["5"]
            assert [v for k, v in header_list if k == "accept"] == ["application/json"]
            assert json.loads(seen[0]["body"]) == {"n": 7}

            failing = await _wait_for_end(engine, await start(engine, "http_fail"))
            assert failing.status is WorkflowStatus.FAILED
            task = failing.tasks[0]
            assert task.status is TaskStatus.FAILED
            assert task.reason_for_incompletion == (
                "Failed to invoke HTTP task due to: 404 Not Found"
            )
            assert task.output_data["response"]["body"] == {"error": "nope"}
        nursery.cancel_scope.cancel()


async def test_http_task_connection_refused() -> None:
    # Bind then close a port so nothing listens there.
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    async with running_engine() as engine:
        await register(
            engine, wf_def("refused", [_http_task("c", f"http://127.0.0.1:{port}/", method="GET")])
        )
        workflow = await _wait_for_end(engine, await start(engine, "refused"))
        assert workflow.tasks[0].status is TaskStatus.FAILED
        assert "Failed to invoke HTTP task" in str(workflow.tasks[0].reason_for_incompletion)


async def _put_handler(engine: Any, body: dict[str, Any]) -> None:
    handler = codec.convert(body, EventHandler)
    await engine.store.put_event_handler(handler.name, codec.encode(handler))
    engine.metadata_changed()


async def test_event_handler_completes_wait_task(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            wf_def(
                "waiting",
                [{"name": "wait", "taskReferenceName": "wait_here", "type": "WAIT"}],
                outputParameters={"got": "${wait_here.output.value}"},
            ),
        )
        await _put_handler(
            engine,
            {
                "name": "completer",
                "event": "test:signals",
                "active": True,
                "condition": "$.kind == 'go'",
                "actions": [
                    {
                        "action": "complete_task",
                        "complete_task": {
                            "workflowId": "${workflowId}",
                            "taskRefName": "wait_here",
                            "output": {"value": "${value}"},
                        },
                    }
                ],
            },
        )
        wf_id = await start(engine, "waiting")
        assert (await engine.get_workflow(wf_id)).tasks[0].status is TaskStatus.IN_PROGRESS
        # The condition filters: this message runs no action.
        ran = await engine.publish_event(
            "test:signals", {"workflowId": wf_id, "value": 1, "kind": "stop"}
        )
        assert ran == 0
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.RUNNING
        ran = await engine.publish_event(
            "test:signals", {"workflowId": wf_id, "value": 42, "kind": "go"}
        )
        assert ran == 1
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert workflow.output == {"got": 42}


async def test_event_task_starts_workflow_via_handler(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            wf_def(
                "emitter",
                [
                    {
                        "name": "emit",
                        "taskReferenceName": "emit",
                        "type": "EVENT",
                        "sink": "conductor",
                        "inputParameters": {"order": "${workflow.input.order}"},
                    }
                ],
            ),
            wf_def(
                "reactor",
                [
                    {
                        "name": "setvar",
                        "taskReferenceName": "sv",
                        "type": "SET_VARIABLE",
                        "inputParameters": {"order": "${workflow.input.order}"},
                    }
                ],
                outputParameters={"order": "${workflow.variables.order}"},
            ),
        )
        await _put_handler(
            engine,
            {
                "name": "starter",
                "event": "conductor:emitter:emit",
                "active": True,
                "actions": [
                    {
                        "action": "start_workflow",
                        "start_workflow": {
                            "name": "reactor",
                            "input": {"order": "${order}"},
                            "correlationId": "${workflowInstanceId}",
                        },
                    }
                ],
            },
        )
        emitter_id = await start(engine, "emitter", {"order": "o-1"})
        assert (await engine.get_workflow(emitter_id)).status is WorkflowStatus.COMPLETED
        [reactor] = await engine.correlated(
            "reactor", emitter_id, include_closed=True, include_tasks=False
        )
        assert reactor.status is WorkflowStatus.COMPLETED
        assert reactor.output == {"order": "o-1"}
        assert reactor.input["conductor.event.name"] == "conductor:emitter:emit"


async def test_http_task_read_timeout() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()  # accepts, never answers

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        async with running_engine() as engine:
            await register(
                engine,
                wf_def(
                    "slow_http",
                    [_http_task("c", f"http://127.0.0.1:{port}/", method="GET", readTimeOut=200)],
                ),
            )
            workflow = await _wait_for_end(engine, await start(engine, "slow_http"))
            reason = str(workflow.tasks[0].reason_for_incompletion)
            assert reason.startswith("Failed to invoke HTTP task due to: ReadTimeout")
        nursery.cancel_scope.cancel()


async def test_event_handler_fails_task_by_id_with_inline_json(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            wf_def("human_wf", [{"name": "h", "taskReferenceName": "h", "type": "HUMAN"}]),
        )
        await _put_handler(
            engine,
            {
                "name": "failer",
                "event": "sqs:verdicts",
                "active": True,
                "actions": [
                    {
                        "action": "fail_task",
                        "fail_task": {
                            "workflowId": "${body.wf}",
                            "taskId": "${body.task}",
                            "output": {"why": "${body.why}"},
                            "reasonForIncompletion": "${body.why}",
                        },
                        "expandInlineJSON": True,
                    }
                ],
            },
        )
        # An inactive handler on the same queue never runs.
        await _put_handler(
            engine,
            {
                "name": "inactive",
                "event": "sqs:verdicts",
                "active": False,
                "actions": [{"action": "complete_task", "complete_task": {"taskId": "x"}}],
            },
        )
        wf_id = await start(engine, "human_wf")
        task_id = (await engine.get_workflow(wf_id)).tasks[0].task_id
        body = json.dumps({"wf": wf_id, "task": task_id, "why": "rejected"})
        assert await engine.publish_event("sqs:verdicts", {"body": body}) == 1
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.FAILED
        assert workflow.tasks[0].status is TaskStatus.FAILED
        assert workflow.tasks[0].output_data == {"why": "rejected"}
        assert workflow.tasks[0].reason_for_incompletion == "rejected"


async def test_http_call_lost_with_its_process_is_made_again() -> None:
    calls: list[int] = []
    first_call = trio.Event()

    async def first_hangs(stream: trio.SocketStream) -> None:
        calls.append(1)
        first_call.set()
        if len(calls) == 1:
            await trio.sleep_forever()  # the call in flight when the "process" dies
        await _serve_one(stream, [])

    store = MemoryStore()
    await store.open()
    config = EngineConfig(system_task_recheck_ms=300)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, first_hangs, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        task = _http_task("c", f"http://127.0.0.1:{port}/x", method="GET", readTimeOut=60_000)
        async with running_engine(store, config, own_store=False) as engine:
            await register(engine, wf_def("lost_call", [task]))
            wf_id = await start(engine, "lost_call")
            with trio.fail_after(5):
                await first_call.wait()
        # Engine A is gone (its nursery cancelled the call). Engine B, same store:
        async with running_engine(store, config, own_store=False) as engine:
            workflow = await _wait_for_end(engine, wf_id)
            assert workflow.status is WorkflowStatus.COMPLETED
            assert workflow.tasks[0].output_data["response"]["statusCode"] == 200
        assert len(calls) == 2
        nursery.cancel_scope.cancel()
