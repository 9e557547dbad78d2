"""The HTTP layer through a real client (httpx) on loopback: routing, parameters, bodies,
error bodies, and what the official SDK sends (`{}` on DELETE, `True` booleans)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from server.http import HttpServer
from tests.server.http_support import AppState, start_server


@pytest.fixture
def state() -> AppState:
    return AppState()


@pytest.fixture
async def server(nursery: trio.Nursery, state: AppState) -> AsyncIterator[HttpServer]:
    srv = await start_server(nursery, state)
    yield srv
    srv.shutdown()


@pytest.fixture
async def client(server: HttpServer) -> AsyncIterator[httpx.AsyncClient]:
    # The SDK sends Content-Type: application/json on every request, GETs included.
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}",
        headers={"Content-Type": "application/json"},
    ) as c:
        yield c


async def test_path_parameter_is_decoded(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/workflow/wf%201")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["id"] == "wf 1"


async def test_literal_segment_wins_over_parameter(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/workflow/running/order")).json() == {"running": "order"}
    assert (await client.get("/api/workflow/running")).json()["id"] == "running"


async def test_unknown_path_is_404_in_conductor_shape(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/nothing/here")
    assert resp.status_code == 404
    body = resp.json()
    assert body["status"] == 404
    assert body["message"] == "No route for GET /api/nothing/here"
    assert body["retryable"] is False
    assert isinstance(body["instance"], str)
    assert body["instance"]


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/workflow/abc/pause", content=b"{}")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "OPTIONS, PUT"
    assert resp.json()["status"] == 405
    resp = await client.patch("/api/workflow/abc", content=b"{}")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False)],
)
async def test_boolean_query_in_both_spellings(
    client: httpx.AsyncClient, raw: str, expected: bool
) -> None:
    resp = await client.get(f"/api/workflow/w?includeTasks={raw}")
    assert resp.json()["include_tasks"] is expected


async def test_boolean_query_default_and_garbage(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/workflow/w")).json()["include_tasks"] is True
    resp = await client.get("/api/workflow/w?includeTasks=maybe")
    assert resp.status_code == 400
    assert (
        resp.json()["message"]
        == "Query parameter 'includeTasks' must be true or false, got 'maybe'"
    )


async def test_query_multi_values_and_plus_as_space(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/workflow/w?tag=a&tag=b+c&empty=")
    assert resp.json()["query"] == {"tag": ["a", "b c"], "empty": [""]}


async def test_integer_query_and_its_400(client: httpx.AsyncClient) -> None:
    ok = await client.get("/api/tasks/poll/batch/t1?workerid=h&count=5&timeout=100")
    assert ok.json() == {"type": "t1", "count": 5, "timeout": 100}
    bad = await client.get("/api/tasks/poll/batch/t1?count=five")
    assert bad.status_code == 400
    assert bad.json()["message"] == "Query parameter 'count' must be an integer, got 'five'"
    low = await client.get("/api/tasks/poll/batch/t1?count=0")
    assert low.status_code == 400
    assert low.json()["message"] == "Query parameter 'count' must be at least 1, got 0"


async def test_json_body_decodes_and_text_plain_id(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/workflow", json={"name": "order", "input": {"a": 1}})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.text == "id-of-order"


async def test_bad_json_body_is_400_with_validation_path(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/workflow", json={"name": "order", "priority": "high"})
    assert resp.status_code == 400
    body = resp.json()
    assert body["status"] == 400
    assert body["validationErrors"] == [
        {"path": "priority", "message": "Expected `int | null`, got `str`", "invalidValue": None}
    ]


async def test_missing_required_field_and_malformed_json(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/workflow", json={"input": {}})
    assert resp.status_code == 400
    assert resp.json()["validationErrors"][0]["message"] == "Object missing required field `name`"
    resp = await client.post("/api/workflow", content=b"{not json")
    assert resp.status_code == 400
    assert resp.json()["validationErrors"][0]["message"].startswith("malformed JSON")


async def test_delete_with_empty_object_body_and_python_bool(
    client: httpx.AsyncClient, state: AppState
) -> None:
    # What the SDK's terminate sends: DELETE, body `{}`, urlencoded `True`.
    resp = await client.request(
        "DELETE", "/api/workflow/w1?reason=done+now&triggerFailureWorkflow=True", content=b"{}"
    )
    assert resp.status_code == 200
    assert resp.content == b""
    assert resp.headers["content-length"] == "0"
    assert state.bodies == [b"{}"]


async def test_put_with_empty_object_body(client: httpx.AsyncClient, state: AppState) -> None:
    resp = await client.put("/api/workflow/w1/pause", content=b"{}")
    assert resp.status_code == 200
    assert state.bodies == [b"{}"]


async def test_podium_error_maps_to_its_status(client: httpx.AsyncClient) -> None:
    resp = await client.get("/missing/x1")
    assert resp.status_code == 404
    assert resp.json()["message"] == "No such workflow found by id: x1"


async def test_unexpected_exception_is_generic_500_and_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    resp = await client.get("/boom")
    assert resp.status_code == 500
    body = resp.json()
    assert "secret internals" not in body["message"]
    assert body["message"].startswith("Internal server error (ref ")
    records = [r for r in caplog.records if r.name == "podium.http"]
    assert len(records) == 1
    assert "RuntimeError" in records[0].getMessage()
    assert records[0].exc_info is not None


async def test_head_has_get_headers_and_no_body(client: httpx.AsyncClient) -> None:
    get = await client.get("/api/workflow/w")
    head = await client.head("/api/workflow/w")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


async def test_204_has_no_content_length(client: httpx.AsyncClient) -> None:
    resp = await client.get("/nc")
    assert resp.status_code == 204
    assert "content-length" not in resp.headers
    assert resp.content == b""


async def test_chunked_request_body(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"hello ", b"chunked ", b"world"):
            yield part

    resp = await client.post("/echo", content=chunks())
    assert resp.status_code == 200
    assert resp.content == b"hello chunked world"


async def test_many_concurrent_connections(server: HttpServer) -> None:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", limits=limits) as c:
        statuses: list[int] = []

        async def one(i: int) -> None:
            statuses.append((await c.get(f"/api/workflow/w{i}")).status_code)

        async with trio.open_nursery() as n:
            for i in range(200):
                n.start_soon(one, i)
    assert statuses == [200] * 200
