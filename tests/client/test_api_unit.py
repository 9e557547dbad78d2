"""Unit tests: what ConductorClient sends and how it reads answers (against the fake)."""

from __future__ import annotations

import json

import pytest

from client import ConductorApiError, ConductorClient, api_base_url
from client.http import TransportError
from core.enums import TaskResultStatus, WorkflowStatus
from core.models import StartWorkflowRequest, TaskDef, TaskResult, WorkflowDef, WorkflowTask
from tests.client.fake_server import FakeConductor, make_task


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://h:1", "http://h:1/api"),
        ("http://h:1/", "http://h:1/api"),
        ("http://h:1/api", "http://h:1/api"),
        (" https://h/api/ ", "https://h/api"),
    ],
)
def test_api_base_url(given: str, expected: str) -> None:
    assert api_base_url(given) == expected


def test_api_base_url_needs_a_scheme() -> None:
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        api_base_url("localhost:8080")


async def test_start_workflow_sends_request_and_reads_plain_id(fake: FakeConductor) -> None:
    fake.canned[("POST", "/api/workflow")] = (200, b"wf-123")
    fake.canned[("POST", "/api/workflow/w")] = (200, b'"wf-456"')
    async with ConductorClient(fake.url) as c:
        wid = await c.start_workflow(
            StartWorkflowRequest(name="w", version=2, input={"x": 1}, correlation_id="c")
        )
        wid2 = await c.start_workflow_by_name("w", {"y": 2}, version=3, priority=5)
    assert (wid, wid2) == ("wf-123", "wf-456")
    first, second = fake.requests
    assert first.headers["accept"] == "text/plain"
    assert first.headers["content-type"] == "application/json"
    body = first.json()
    assert body["name"] == "w"
    assert body["version"] == 2
    assert body["input"] == {"x": 1}
    assert body["correlationId"] == "c"
    assert second.query == {"version": "3", "priority": "5"}
    assert second.json() == {"y": 2}


async def test_metadata_calls(fake: FakeConductor) -> None:
    td = {"name": "t1", "retryCount": 2}
    fake.canned[("GET", "/api/metadata/taskdefs/t1")] = (200, json.dumps(td).encode())
    wf = {"name": "w", "version": 1, "tasks": [{"name": "t1", "taskReferenceName": "r"}]}
    fake.canned[("GET", "/api/metadata/workflow/w")] = (200, json.dumps(wf).encode())
    fake.canned[("POST", "/api/metadata/taskdefs")] = (200, b"")
    fake.canned[("POST", "/api/metadata/workflow")] = (200, b"")
    fake.canned[("PUT", "/api/metadata/workflow")] = (200, b"")
    async with ConductorClient(fake.url + "/api") as c:
        await c.register_task_defs([TaskDef(name="t1", retry_count=2)])
        got = await c.get_task_def("t1")
        definition = WorkflowDef(name="w", tasks=[WorkflowTask(name="t1", task_reference_name="r")])
        await c.register_workflow_def(definition, overwrite=True)
        bulk = await c.update_workflow_defs([definition])
        wdef = await c.get_workflow_def("w", version=1)
    assert got.retry_count == 2
    assert wdef.tasks[0].task_reference_name == "r"
    assert bulk.bulk_successful_results == []
    reg, _, post_wf, put_wf, get_wf = fake.requests
    assert isinstance(reg.json(), list)
    assert reg.json()[0]["name"] == "t1"
    assert post_wf.query == {"overwrite": "true"}
    assert isinstance(put_wf.json(), list)
    assert get_wf.query == {"version": "1"}


async def test_workflow_operations_paths_and_params(fake: FakeConductor) -> None:
    for method, path in [
        ("PUT", "/api/workflow/a%2Fb/pause"),
        ("PUT", "/api/workflow/a%2Fb/resume"),
        ("POST", "/api/workflow/a%2Fb/retry"),
        ("POST", "/api/workflow/a%2Fb/restart"),
        ("DELETE", "/api/workflow/a%2Fb"),
    ]:
        # the id's "/" must travel percent-encoded, as one path segment
        fake.canned[(method, path)] = (200, b"")
    async with ConductorClient(fake.url) as c:
        await c.pause_workflow("a/b")
        await c.resume_workflow("a/b")
        await c.retry_workflow("a/b", resume_subworkflow_tasks=True)
        await c.restart_workflow("a/b")
        await c.terminate_workflow("a/b", reason="stop it")
    methods = [(r.method, r.query) for r in fake.requests]
    assert methods == [
        ("PUT", {}),
        ("PUT", {}),
        ("POST", {"resumeSubworkflowTasks": "true"}),
        ("POST", {"useLatestDefinitions": "false"}),
        ("DELETE", {"reason": "stop it"}),
    ]
    assert fake.requests[0].body == b"{}"


async def test_get_workflow_and_search(fake: FakeConductor) -> None:
    wf = {"workflowId": "w1", "workflowName": "n", "workflowVersion": 1, "status": "COMPLETED"}
    fake.canned[("GET", "/api/workflow/w1")] = (200, json.dumps(wf).encode())
    hits = {
        "totalHits": 1,
        "results": [
            {
                "workflowType": "n",
                "version": 1,
                "workflowId": "w1",
                "status": "COMPLETED",
                "startTime": "2026-01-01T00:00:00.000Z",
            }
        ],
    }
    fake.canned[("GET", "/api/workflow/search")] = (200, json.dumps(hits).encode())
    async with ConductorClient(fake.url) as c:
        got = await c.get_workflow("w1", include_tasks=False)
        found = await c.search_workflows("workflowType = 'n'", size=5)
    assert got.status is WorkflowStatus.COMPLETED
    assert found.total_hits == 1
    assert found.results[0].workflow_id == "w1"
    assert fake.requests[0].query == {"includeTasks": "false"}
    assert fake.requests[1].query == {
        "query": "workflowType = 'n'",
        "freeText": "*",
        "start": "0",
        "size": "5",
    }


async def test_error_answer_raises_with_status_message_and_body(fake: FakeConductor) -> None:
    body = b'{"status":404,"message":"No such workflow found by id: nope","retryable":false}'
    fake.canned[("GET", "/api/workflow/nope")] = (404, body)
    async with ConductorClient(fake.url) as c:
        with pytest.raises(ConductorApiError) as info:
            await c.get_workflow("nope")
    assert info.value.status == 404
    assert info.value.message == "No such workflow found by id: nope"
    assert info.value.body == body.decode()
    assert info.value.retryable is False
    assert str(info.value) == "HTTP 404: No such workflow found by id: nope"


async def test_server_errors_are_retryable(fake: FakeConductor) -> None:
    fake.canned[("GET", "/api/metadata/taskdefs")] = (503, b"overloaded")
    async with ConductorClient(fake.url) as c:
        with pytest.raises(ConductorApiError) as info:
            await c.get_task_defs()
    assert info.value.retryable is True
    assert info.value.message == "overloaded"


async def test_wrong_shaped_answer_is_an_api_error(fake: FakeConductor) -> None:
    fake.canned[("GET", "/api/metadata/taskdefs/t")] = (200, b'{"retryCount": 1}')
    async with ConductorClient(fake.url) as c:
        with pytest.raises(ConductorApiError) as info:
            await c.get_task_def("t")
    assert info.value.status == 200
    assert "unexpected response from GET /api/metadata/taskdefs/t" in info.value.message
    assert "name" in info.value.message


async def test_batch_poll_and_update_v2(fake: FakeConductor) -> None:
    fake.push(make_task("t", {"a": 1}))
    fake.push(make_task("t", {"a": 2}))
    async with ConductorClient(fake.url) as c:
        tasks = await c.batch_poll("t", count=1, timeout_ms=50, worker_id="me")
        assert [t.input_data for t in tasks] == [{"a": 1}]
        nxt = await c.update_task_v2(
            TaskResult(
                workflow_instance_id=tasks[0].workflow_instance_id,
                task_id=tasks[0].task_id,
                status=TaskResultStatus.COMPLETED,
            )
        )
        assert nxt is not None
        assert nxt.input_data == {"a": 2}
        none = await c.update_task_v2(
            TaskResult(
                workflow_instance_id=nxt.workflow_instance_id,
                task_id=nxt.task_id,
                status=TaskResultStatus.COMPLETED,
            )
        )
        empty = await c.batch_poll("t", count=3, timeout_ms=20)
    assert none is None
    assert empty == []
    assert fake.requests[0].query == {"workerid": "me", "count": "1", "timeout": "50"}


async def test_transport_errors_raise_transport_error() -> None:
    async with ConductorClient("http://127.0.0.1:9") as c:
        with pytest.raises(TransportError):
            await c.get_task_defs()
