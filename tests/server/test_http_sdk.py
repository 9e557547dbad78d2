"""The official conductor-python SDK's transport against the HTTP layer: text/plain ids,
`{}` bodies on DELETE/PUT, urlencoded `True`, and Conductor's error body read into
`ApiException.message`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.api.workflow_resource_api import WorkflowResourceApi
from conductor.client.http.api_client import ApiClient
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.rest import ApiException

from core.errors import NotFound
from core.models import StartWorkflowRequest as StartBody
from server.http import HttpServer, Request, Response, Router, serve_http


class Seen:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, list[str]], bytes, str]] = []


def make_router(seen: Seen) -> Router:
    router = Router()

    def record(request: Request) -> None:
        seen.requests.append(
            (
                request.method,
                request.path,
                request.query,
                request.body,
                request.headers.get("content-type", ""),
            )
        )

    async def get_workflow(request: Request) -> Response:
        record(request)
        raise NotFound(f"No such workflow found by id: {request.path_params['workflowId']}")

    async def start(request: Request) -> Response:
        record(request)
        return Response.text(f"wf-{request.json(StartBody).name}")

    async def terminate(request: Request) -> Response:
        record(request)
        request.query_bool("triggerFailureWorkflow", False)
        return Response.empty()

    async def pause(request: Request) -> Response:
        record(request)
        return Response.empty()

    router.add("GET", "/api/workflow/{workflowId}", get_workflow)
    router.add("POST", "/api/workflow", start)
    router.add("DELETE", "/api/workflow/{workflowId}", terminate)
    router.add("PUT", "/api/workflow/{workflowId}/pause", pause)
    return router


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def api(nursery: trio.Nursery, seen: Seen) -> AsyncIterator[WorkflowResourceApi]:
    server: HttpServer = await nursery.start(serve_http, make_router(seen), "127.0.0.1", 0)
    config = Configuration(server_api_url=f"http://127.0.0.1:{server.port}/api")
    yield WorkflowResourceApi(ApiClient(config))
    server.shutdown()


async def test_sdk_calls_round_trip(api: WorkflowResourceApi, seen: Seen) -> None:
    def calls() -> str:
        workflow_id: str = api.start_workflow(StartWorkflowRequest(name="order", input={"a": 1}))
        api.pause_workflow(workflow_id)
        api.terminate(workflow_id, reason="done now", trigger_failure_workflow=True)
        return workflow_id

    workflow_id = await trio.to_thread.run_sync(calls)
    assert workflow_id == "wf-order"
    (start, pause, terminate) = seen.requests
    assert start[:2] == ("POST", "/api/workflow")
    assert pause[:2] == ("PUT", "/api/workflow/wf-order/pause")
    assert pause[3] == b"{}"
    assert terminate[:2] == ("DELETE", "/api/workflow/wf-order")
    assert terminate[2] == {"reason": ["done now"], "triggerFailureWorkflow": ["True"]}
    assert terminate[3] == b"{}"
    assert all(r[4] == "application/json" for r in seen.requests)


async def test_sdk_reads_the_error_message(api: WorkflowResourceApi) -> None:
    def call() -> ApiException:
        with pytest.raises(ApiException) as info:
            api.get_execution_status("nope")
        return info.value

    error = await trio.to_thread.run_sync(call)
    assert error.status == 404
    assert error.message == "No such workflow found by id: nope"
