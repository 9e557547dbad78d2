"""The OpenAPI document generated from the route table, as served over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from core.models import StartWorkflowRequest, Workflow
from server.http import QueryParam, Request, Response, Router, serve_http
from server.http.openapi import add_openapi_routes, openapi_document


async def get_execution_status(request: Request) -> Response:
    return Response.empty()


async def start_workflow(request: Request) -> Response:
    return Response.text("id")


def make_router() -> Router:
    router = Router()
    router.add(
        "GET",
        "/api/workflow/{workflowId}",
        get_execution_status,
        response=Workflow,
        query=[QueryParam("includeTasks", bool, True, "Include the tasks")],
        summary="Gets the workflow by workflow id",
        tags=["workflow-resource"],
    )
    router.add("POST", "/api/workflow", start_workflow, body=StartWorkflowRequest, response=str)
    return router


def test_document_structure() -> None:
    doc = openapi_document(make_router(), title="Podium", version="1.2.3")
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "Podium", "version": "1.2.3"}
    get_op = doc["paths"]["/api/workflow/{workflowId}"]["get"]
    assert get_op["operationId"] == "get_execution_status"
    assert get_op["tags"] == ["workflow-resource"]
    assert get_op["parameters"] == [
        {"name": "workflowId", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "includeTasks",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean", "default": True},
            "description": "Include the tasks",
        },
    ]
    ok = get_op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Workflow"}
    error = get_op["responses"]["default"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorResponse"}
    post_op = doc["paths"]["/api/workflow"]["post"]
    assert post_op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StartWorkflowRequest"
    }
    assert post_op["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
    schemas = doc["components"]["schemas"]
    for name in ("Workflow", "Task", "StartWorkflowRequest", "ErrorResponse"):
        assert name in schemas
    # camelCase wire names, as the SDK sends them
    assert "correlationId" in schemas["StartWorkflowRequest"]["properties"]
    # every $ref points at a component that exists
    refs = {ref.rsplit("/", 1)[1] for ref in _find_refs(doc)}
    assert refs <= set(schemas)


def _find_refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        for value in node.values():
            found.extend(_find_refs(value))
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _find_refs(item)]
    return []


@pytest.fixture
async def port(nursery: trio.Nursery) -> AsyncIterator[int]:
    router = make_router()
    add_openapi_routes(router, title="Podium", version="0.1.0")
    server = await nursery.start(serve_http, router, "127.0.0.1", 0)
    yield server.port
    server.shutdown()


@pytest.mark.parametrize("path", ["/api-docs", "/openapi.json"])
async def test_served_as_json(port: int, path: str) -> None:
    async with httpx.AsyncClient() as client:
        resp = await client.get(f"http://127.0.0.1:{port}{path}")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    doc = json.loads(resp.content)
    assert set(doc["paths"]) == {
        "/api/workflow/{workflowId}",
        "/api/workflow",
        "/api-docs",
        "/openapi.json",
    }
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert "Workflow" in doc["components"]["schemas"]
