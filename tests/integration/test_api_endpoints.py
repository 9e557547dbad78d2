"""The REST endpoints the SDK scenarios do not reach, over real HTTP: metadata listings
and upsert rules, bulk operations, search-v2, task listings, skip/decide/reset,
start-and-wait, signals, queue and admin endpoints, event handler CRUD."""

from __future__ import annotations

import time
from typing import Any

import httpx

WAIT_WF = {
    "name": "it_ep_wait",
    "tasks": [
        {"name": "park", "taskReferenceName": "park", "type": "WAIT"},
        {"name": "it_ep_worker", "taskReferenceName": "work"},
    ],
}


def _register(api: httpx.Client, *defs: dict[str, Any]) -> None:
    resp = api.put("/api/metadata/workflow", json=list(defs))
    assert resp.status_code == 200, resp.text


def _start(api: httpx.Client, name: str, body: dict[str, Any] | None = None, **q: Any) -> str:
    resp = api.post(f"/api/workflow/{name}", json=body or {}, params=q)
    assert resp.status_code == 200, resp.text
    return resp.text


def test_metadata_listings_and_upserts(api: httpx.Client) -> None:
    td = {"name": "it_ep_td", "retryCount": 1, "ownerEmail": "a@b.c"}
    assert api.post("/api/metadata/taskdefs", json=[td]).status_code == 200
    created = api.get("/api/metadata/taskdefs/it_ep_td").json()
    assert created["createTime"] > 0
    assert api.put("/api/metadata/taskdefs", json={**td, "retryCount": 5}).status_code == 200
    updated = api.get("/api/metadata/taskdefs/it_ep_td").json()
    assert updated["retryCount"] == 5
    assert updated["createTime"] == created["createTime"]
    assert updated["updateTime"] >= created["createTime"]
    assert "it_ep_td" in [t["name"] for t in api.get("/api/metadata/taskdefs").json()]

    one = {"name": "it_ep_versions", "version": 1, "tasks": WAIT_WF["tasks"][:1]}
    two = {**one, "version": 2}
    assert api.post("/api/metadata/workflow", json=one).status_code == 200
    assert api.post("/api/metadata/workflow", json=two).status_code == 200
    assert api.get("/api/metadata/workflow/it_ep_versions").json()["version"] == 2
    assert api.get("/api/metadata/workflow/it_ep_versions?version=1").json()["version"] == 1
    versions = api.get("/api/metadata/workflow/names-and-versions").json()["it_ep_versions"]
    assert [v["version"] for v in versions] == [1, 2]
    # Never updated: no updateTime key at all (null fields are omitted, as in Conductor).
    assert all("updateTime" not in v and v["createTime"] > 0 for v in versions)
    latest = api.get("/api/metadata/workflow/latest-versions").json()
    assert [d["version"] for d in latest if d["name"] == "it_ep_versions"] == [2]
    assert "it_ep_versions" in api.get("/api/metadata/workflow/names").json()
    assert len(api.get("/api/metadata/workflow/it_ep_versions/versions").json()) == 2
    assert api.delete("/api/metadata/workflow/it_ep_versions/2").status_code == 200
    assert api.get("/api/metadata/workflow/it_ep_versions").json()["version"] == 1
    assert api.delete("/api/metadata/taskdefs/it_ep_td").status_code == 200
    assert api.get("/api/metadata/taskdefs/it_ep_td").status_code == 404


def test_bulk_operations(api: httpx.Client) -> None:
    _register(api, WAIT_WF)
    ids = [_start(api, "it_ep_wait") for _ in range(2)]
    body = [*ids, "it-missing"]
    paused = api.put("/api/workflow/bulk/pause", json=body).json()
    assert paused["bulkSuccessfulResults"] == ids
    assert list(paused["bulkErrorResults"]) == ["it-missing"]
    assert {api.get(f"/api/workflow/{i}/status").json()["status"] for i in ids} == {"PAUSED"}
    assert api.put("/api/workflow/bulk/resume", json=ids).json()["bulkSuccessfulResults"] == ids
    found = api.post("/api/workflow/bulk/search?includeTasks=false", json=body).json()
    assert [w["workflowId"] for w in found["bulkSuccessfulResults"]] == ids
    assert found["bulkSuccessfulResults"][0]["tasks"] == []
    resp = api.post("/api/workflow/bulk/terminate?reason=bulk", json=ids).json()
    assert resp["bulkSuccessfulResults"] == ids
    assert api.get(f"/api/workflow/{ids[0]}").json()["reasonForIncompletion"] == "bulk"
    assert api.post("/api/workflow/bulk/restart", json=ids).json()["bulkErrorResults"] == {}
    removed = api.request("DELETE", "/api/workflow/bulk/terminate-remove", json=ids).json()
    assert removed["bulkSuccessfulResults"] == ids
    assert api.get(f"/api/workflow/{ids[1]}").status_code == 404


def test_search_tasks_listing_skip_and_correlation(api: httpx.Client) -> None:
    _register(api, WAIT_WF)
    workflow_id = _start(api, "it_ep_wait", {"tag": "needle-42"}, correlationId="it-ep-corr")
    v2 = api.get("/api/workflow/search-v2", params={"freeText": "needle-42"}).json()
    assert [w["workflowId"] for w in v2["results"]] == [workflow_id]
    assert v2["results"][0]["tasks"][0]["referenceTaskName"] == "park"
    hits = api.get(
        "/api/workflow/search",
        params={"query": "workflowType = 'it_ep_wait' AND correlationId = 'it-ep-corr'"},
    ).json()
    assert hits["totalHits"] == 1
    assert hits["results"][0]["startTime"].endswith("Z")
    # A workflow started without a correlationId: its summary omits the key (no nulls).
    plain_id = _start(api, "it_ep_wait", {"tag": "no-corr"})
    plain = api.get("/api/workflow/search", params={"freeText": "no-corr"}).json()["results"]
    assert [w["workflowId"] for w in plain] == [plain_id]
    assert "correlationId" not in plain[0]
    assert None not in plain[0].values()
    page = api.get(f"/api/workflow/{workflow_id}/tasks?status=in_progress").json()
    assert [t["referenceTaskName"] for t in page["results"]] == ["park"]
    by_corr = api.post("/api/workflow/it_ep_wait/correlated", json=["it-ep-corr"]).json()
    assert [w["workflowId"] for w in by_corr["it-ep-corr"]] == [workflow_id]

    # Skip the worker task before it is scheduled, then release the WAIT.
    resp = api.put(f"/api/workflow/{workflow_id}/skiptask/work", json={})
    assert resp.status_code == 200, resp.text
    signal = api.post(f"/api/tasks/{workflow_id}/COMPLETED/signal/sync", json={"ok": 1})
    assert signal.status_code == 200
    done = api.get(f"/api/workflow/{workflow_id}").json()
    assert done["status"] == "COMPLETED"
    assert [(t["referenceTaskName"], t["status"]) for t in done["tasks"]] == [
        ("park", "COMPLETED"),
        ("work", "SKIPPED"),
    ]
    assert api.put(f"/api/workflow/decide/{workflow_id}").status_code == 200


def test_execute_start_and_wait(api: httpx.Client) -> None:
    _register(
        api,
        {
            "name": "it_ep_exec",
            "tasks": [
                {
                    "name": "calc",
                    "taskReferenceName": "calc",
                    "type": "INLINE",
                    "inputParameters": {
                        "evaluatorType": "javascript",
                        "expression": "$.x * 2",
                        "x": "${workflow.input.x}",
                    },
                }
            ],
            "outputParameters": {"y": "${calc.output.result}"},
        },
        WAIT_WF,
    )
    run = api.post(
        "/api/workflow/execute/it_ep_exec/1?requestId=r-1",
        json={"name": "ignored", "input": {"x": 21}},
    ).json()
    assert run["status"] == "COMPLETED"
    assert run["output"] == {"y": 42}
    assert run["requestId"] == "r-1"
    assert run["targetWorkflowId"] == run["workflowId"]
    latest = api.post("/api/workflow/execute/it_ep_exec", json={"input": {"x": 1}}).json()
    assert latest["output"] == {"y": 2}
    started = time.monotonic()
    parked = api.post(
        "/api/workflow/execute/it_ep_wait/1?waitUntilTaskRef=park&waitForSeconds=5",
        json={"input": {}},
    ).json()
    assert parked["status"] == "RUNNING"
    assert [t["referenceTaskName"] for t in parked["tasks"]] == ["park"]
    assert time.monotonic() - started < 4


def test_queue_admin_and_callbacks(api: httpx.Client) -> None:
    _register(
        api, {"name": "it_ep_queue", "tasks": [{"name": "it_ep_q", "taskReferenceName": "q"}]}
    )
    workflow_id = _start(api, "it_ep_queue")
    assert api.get("/api/tasks/queue/sizes?taskType=it_ep_q").json() == {"it_ep_q": 1}
    assert api.get("/api/tasks/queue/size?taskType=it_ep_q").json() == 1
    verbose = api.get("/api/tasks/queue/all/verbose").json()
    assert verbose["it_ep_q"]["a"]["size"] == 1
    pending = api.get("/api/admin/task/it_ep_q").json()
    assert [t["workflowInstanceId"] for t in pending] == [workflow_id]
    assert api.post("/api/tasks/queue/requeue/it_ep_q").text == "0"
    assert api.post(f"/api/admin/consistency/verifyAndRepair/{workflow_id}").text == "false"
    assert api.post(f"/api/admin/sweep/requeue/{workflow_id}").text == workflow_id

    [task] = api.get("/api/tasks/poll/batch/it_ep_q?count=3&timeout=200&workerid=w").json()
    assert task["pollCount"] == 1
    resp = api.post(
        "/api/tasks",
        json={
            "taskId": task["taskId"],
            "workflowInstanceId": workflow_id,
            "status": "IN_PROGRESS",
            "callbackAfterSeconds": 3600,
        },
    )
    assert resp.status_code == 200
    assert api.get("/api/tasks/poll/it_ep_q").status_code == 204  # waiting out the callback
    resp = api.post(f"/api/workflow/{workflow_id}/resetcallbacks", json={})
    assert resp.status_code == 204
    again = api.get("/api/tasks/poll/it_ep_q")
    assert again.status_code == 200
    assert again.json()["taskId"] == task["taskId"]
    assert api.post(f"/api/tasks/{task['taskId']}/log", content=b'"quoted line"').status_code == 200
    assert api.get(f"/api/tasks/{task['taskId']}/log").json()[0]["log"] == "quoted line"
    assert api.post(f"/api/tasks/{task['taskId']}/ack").text == "true"
    api.post(f"/api/queue/update/{workflow_id}/q/COMPLETED", json={"via": "queue"})
    assert api.get(f"/api/workflow/{workflow_id}").json()["status"] == "COMPLETED"


def test_event_handler_crud(api: httpx.Client) -> None:
    handler = {
        "name": "it_ep_handler",
        "event": "it_ep:q",
        "actions": [{"action": "complete_task", "complete_task": {"taskId": "${id}"}}],
    }
    api.delete("/api/event/it_ep_handler")
    assert api.post("/api/event", json=handler).status_code == 200
    assert api.get("/api/event/it_ep:q").json() == []  # inactive, activeOnly defaults true
    assert len(api.get("/api/event/it_ep:q?activeOnly=false").json()) == 1
    assert api.put("/api/event", json={**handler, "active": True}).status_code == 200
    assert [h["name"] for h in api.get("/api/event/it_ep:q").json()] == ["it_ep_handler"]
    assert "it_ep:q" in api.get("/api/admin/queues").json()
    bad = {**handler, "actions": [{"action": "launch_rocket"}]}
    resp = api.put("/api/event", json=bad)
    assert resp.status_code == 400
    assert resp.json()["validationErrors"][0]["path"] == "actions[0].action"
    assert api.delete("/api/event/it_ep_handler").status_code == 200
    assert api.put("/api/event", json=handler).status_code == 404


def test_task_search(api: httpx.Client) -> None:
    _register(
        api,
        {
            "name": "it_ep_tsearch",
            "tasks": [
                {
                    "name": "it_ep_ts",
                    "taskReferenceName": "ts",
                    "inputParameters": {"k": "${workflow.input.k}"},
                }
            ],
        },
    )
    ids = [_start(api, "it_ep_tsearch", {"k": f"key-{i}"}) for i in range(3)]
    found = api.get(
        "/api/tasks/search",
        params={
            "query": "taskType = 'it_ep_ts' AND status IN (SCHEDULED)",
            "sort": "workflowId:ASC",
        },
    ).json()
    assert found["totalHits"] == 3
    assert [s["workflowId"] for s in found["results"]] == sorted(ids)
    summary = found["results"][0]
    assert summary["taskType"] == "it_ep_ts"
    assert summary["workflowType"] == "it_ep_tsearch"
    assert summary["scheduledTime"].endswith("Z")
    one = api.get(
        "/api/tasks/search-v2", params={"freeText": "key-1", "query": "taskDefName = 'it_ep_*'"}
    ).json()
    assert one["totalHits"] == 1
    assert one["results"][0]["workflowInstanceId"] == ids[1]
    assert one["results"][0]["inputData"] == {"k": "key-1"}
    paged = api.get("/api/tasks/search-v2?query=taskType%20%3D%20it_ep_ts&start=1&size=1").json()
    assert paged["totalHits"] == 3
    assert len(paged["results"]) == 1
    bad = api.get("/api/tasks/search", params={"query": "taskType = 'x' OR status = 'y'"})
    assert bad.status_code == 400
    assert "AND only" in bad.json()["message"]
    for workflow_id in ids:
        api.delete(f"/api/workflow/{workflow_id}/terminate-remove")
