"""Bad input over real HTTP: every mistake gets Conductor's error body with the right
4xx, the field path where there is one, and never a 500; nothing is half-written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

WF = {
    "name": "it_err_wf",
    "version": 1,
    "schemaVersion": 2,
    "tasks": [{"name": "it_err_task", "taskReferenceName": "a", "type": "WAIT"}],
}


def _error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["retryable"] is False
    assert isinstance(body["instance"], str)
    return body


@pytest.fixture
def registered(api: httpx.Client) -> None:
    assert api.put("/api/metadata/workflow", json=[WF]).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/metadata/taskdefs", b"[{"),
        ("POST", "/api/metadata/workflow", b"not json"),
        ("POST", "/api/workflow", b'{"name": '),
        ("POST", "/api/workflow/it_err_wf", b"{]"),
        ("POST", "/api/tasks", b"\xff\xfe"),
        ("POST", "/api/tasks/update-v2", b'{"taskId": "t", '),
        ("POST", "/api/event", b"{"),
    ],
)
def test_malformed_json_is_400(
    api: httpx.Client, registered: None, method: str, path: str, body: bytes
) -> None:
    body_out = _error(api.request(method, path, content=body), 400)
    assert "malformed JSON" in body_out["message"]


def test_wrong_types_name_the_field(api: httpx.Client) -> None:
    resp = api.post("/api/metadata/taskdefs", json=[{"name": "t", "retryCount": "three"}])
    body = _error(resp, 400)
    assert body["validationErrors"][0]["path"] == "[0].retryCount"
    resp = api.post("/api/workflow", json={"name": "x", "input": [1, 2]})
    assert _error(resp, 400)["validationErrors"][0]["path"] == "input"
    resp = api.post("/api/tasks", json={"taskId": "t", "workflowInstanceId": 5})
    assert _error(resp, 400)["validationErrors"][0]["path"] == "workflowInstanceId"
    resp = api.post("/api/tasks", json={"taskId": "t", "workflowInstanceId": "w", "status": "X"})
    assert _error(resp, 400)["validationErrors"][0]["path"] == "status"


def test_invalid_definitions_write_nothing(api: httpx.Client) -> None:
    bad = [
        {"name": "it_err_ok", "tasks": [{"name": "x", "taskReferenceName": "x", "type": "WAIT"}]},
        {"name": "it_err_bad", "tasks": []},
    ]
    body = _error(api.put("/api/metadata/workflow", json=bad), 400)
    assert [e["path"] for e in body["validationErrors"]] == ["[1].tasks"]
    _error(api.get("/api/metadata/workflow/it_err_ok"), 404)
    resp = api.post(
        "/api/metadata/taskdefs",
        json=[{"name": "it_err_td_ok"}, {"name": "it_err_td", "retryCount": -1}],
    )
    assert _error(resp, 400)["validationErrors"][0]["path"] == "[1].retryCount"
    _error(api.get("/api/metadata/taskdefs/it_err_td_ok"), 404)
    dup = {
        "name": "it_err_dup",
        "tasks": [
            {"name": "x", "taskReferenceName": "same", "type": "WAIT"},
            {"name": "y", "taskReferenceName": "same", "type": "WAIT"},
        ],
    }
    body = _error(api.post("/api/metadata/workflow/validate", json=dup), 400)
    assert body["validationErrors"][0]["path"].startswith("tasks[1]")


def test_unknown_things_are_404(api: httpx.Client) -> None:
    assert "No such workflow" in _error(api.post("/api/workflow/it_nope", json={}), 404)["message"]
    _error(api.get("/api/workflow/00000000-0000-0000-0000-000000000000"), 404)
    _error(api.put("/api/workflow/unknown-id/pause", json={}), 404)
    _error(api.delete("/api/workflow/unknown-id"), 404)
    _error(api.get("/api/tasks/unknown-task"), 404)
    _error(api.get("/api/metadata/taskdefs/it_nope"), 404)
    _error(api.get("/api/metadata/workflow/it_nope?version=3"), 404)
    _error(api.put("/api/metadata/taskdefs", json={"name": "it_nope"}), 404)
    _error(api.delete("/api/metadata/workflow/it_nope/1"), 404)
    _error(api.delete("/api/event/it_nope"), 404)
    resp = api.post(
        "/api/tasks", json={"taskId": "t", "workflowInstanceId": "w", "status": "COMPLETED"}
    )
    _error(resp, 404)
    # No authentication: the SDK reads 404 on /token as open mode.
    _error(api.post("/api/token", json={"keyId": "k", "keySecret": "s"}), 404)


def test_illegal_state_changes_are_409(api: httpx.Client, registered: None) -> None:
    workflow_id = api.post("/api/workflow/it_err_wf", json={}).text
    _error(api.post(f"/api/workflow/{workflow_id}/restart", json={}), 409)
    _error(api.put(f"/api/workflow/{workflow_id}/resume", json={}), 409)
    # Retry of a running workflow is a 404 in Conductor ("Workflow is still running").
    _error(api.post(f"/api/workflow/{workflow_id}/retry", json={}), 404)
    _error(api.post("/api/metadata/workflow", json=WF), 409)
    assert api.post("/api/metadata/workflow?overwrite=True", json=WF).status_code == 200

    resp = api.post(f"/api/tasks/{workflow_id}/a/COMPLETED", json={"ok": True})
    assert resp.status_code == 200
    assert api.get(f"/api/workflow/{workflow_id}").json()["status"] == "COMPLETED"
    _error(api.put(f"/api/workflow/{workflow_id}/pause", json={}), 409)
    body = _error(api.delete(f"/api/workflow/{workflow_id}", params={"reason": "x"}), 409)
    assert body["message"] == "Cannot terminate a COMPLETED workflow."
    _error(api.post(f"/api/workflow/{workflow_id}/resetcallbacks", json={}), 409)
    # Conductor answers 500 here (IllegalStateException); Podium a 4xx.
    skip = api.put(f"/api/workflow/{workflow_id}/skiptask/a", json={})
    assert 400 <= skip.status_code < 500, skip.text
    # An update of a finished task is ignored but answered 200, as Conductor.
    task_id = api.get(f"/api/workflow/{workflow_id}").json()["tasks"][0]["taskId"]
    resp = api.post(
        "/api/tasks",
        json={"taskId": task_id, "workflowInstanceId": workflow_id, "status": "FAILED"},
    )
    assert resp.status_code == 200
    assert resp.text == task_id
    assert api.get(f"/api/workflow/{workflow_id}").json()["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/api/tasks/poll/batch/x?timeout=5001", "Long Poll Timeout"),
        ("/api/tasks/poll/batch/x?count=0", "count"),
        ("/api/tasks/poll/batch/x?count=abc", "count"),
        ("/api/workflow/search?start=-1", "start"),
        ("/api/workflow/search?query=status%20%3D", "query"),
        ("/api/workflow/search?query=nosuchfield%20%3D%201", "nosuchfield"),
        ("/api/workflow/x?includeTasks=maybe", "includeTasks"),
        ("/api/tasks/queue/size", "taskType"),
        ("/api/metadata/workflow/it_err_wf?version=v1", "version"),
    ],
)
def test_bad_query_parameters_are_400(
    api: httpx.Client, registered: None, path: str, fragment: str
) -> None:
    assert fragment in _error(api.get(path), 400)["message"]


def test_bad_priority_and_null_input(api: httpx.Client, registered: None) -> None:
    _error(api.post("/api/workflow/it_err_wf?priority=100", json={}), 400)
    _error(api.post("/api/workflow/it_err_wf", content=b"null"), 400)
    resp = api.post("/api/workflow", json={"name": "it_err_wf", "input": None})
    assert "input" in _error(resp, 400)["message"]
    _error(api.delete("/api/metadata/workflow/it_err_wf/one"), 400)
    _error(api.put("/api/workflow/bulk/pause", json=["x"] * 1001), 400)
    workflow_id = api.post("/api/workflow/it_err_wf", json={}).text
    assert (
        "status"
        in _error(api.get(f"/api/workflow/{workflow_id}/tasks?status=NOPE"), 400)["message"]
    )
    api.delete(f"/api/workflow/{workflow_id}/terminate-remove")
    _error(api.get(f"/api/workflow/{workflow_id}"), 404)


def test_wrong_method_is_405(api: httpx.Client) -> None:
    resp = api.patch("/api/metadata/taskdefs", json={})
    _error(resp, 405)
    assert "GET" in resp.headers["allow"]


def test_numbers_too_large_for_the_store_are_400(api: httpx.Client) -> None:
    huge = 10**20
    for path in (
        f"/api/workflow/search?start={huge}",
        f"/api/workflow/search?query=startTime%20%3E%20{huge}",
        f"/api/tasks/search?query=startTime%20%3E%20{huge}",
        f"/api/workflow/running/x?version={huge}",
        f"/api/metadata/workflow/x?version={huge}",
    ):
        _error(api.get(path), 400)
    _error(api.delete(f"/api/metadata/workflow/x/{huge}"), 400)
    body = _error(api.post("/api/workflow", json={"name": "x", "version": huge}), 400)
    assert body["validationErrors"][0]["path"] == "version"
    # A definition whose timing fields overflow the store: starting it is a 400, and no
    # execution is left behind.
    td = {"name": "it_err_huge", "retryDelaySeconds": huge, "timeoutSeconds": huge}
    assert api.post("/api/metadata/taskdefs", json=[td]).status_code == 200
    wf = {
        "name": "it_err_huge_wf",
        "timeoutSeconds": huge,
        "tasks": [{"name": "it_err_huge", "taskReferenceName": "h"}],
    }
    assert api.put("/api/metadata/workflow", json=[wf]).status_code == 200
    _error(api.post("/api/workflow/it_err_huge_wf", json={}), 400)
    found = api.get("/api/workflow/search", params={"query": "workflowType = 'it_err_huge_wf'"})
    assert found.json()["totalHits"] == 0


def test_callback_after_seconds_out_of_range(api: httpx.Client, registered: None) -> None:
    api.put(
        "/api/metadata/workflow",
        json=[{"name": "it_err_cb", "tasks": [{"name": "it_err_cb_t", "taskReferenceName": "c"}]}],
    )
    workflow_id = api.post("/api/workflow/it_err_cb", json={}).text
    task = api.get("/api/tasks/poll/it_err_cb_t").json()
    result = {
        "taskId": task["taskId"],
        "workflowInstanceId": workflow_id,
        "status": "IN_PROGRESS",
        "callbackAfterSeconds": 10**12,
    }
    body = _error(api.post("/api/tasks", json=result), 400)
    assert body["validationErrors"][0]["path"] == "callbackAfterSeconds"
    assert api.get(f"/api/tasks/{task['taskId']}").json()["status"] == "IN_PROGRESS"
    api.delete(f"/api/workflow/{workflow_id}/terminate-remove")
