"""Wire details the official SDK depends on (sdk-wire.md): internal fields never leave
the server, `subWorkflowParam.idempotencyStrategy` is never returned (it crashes the
SDK), ids are plain text, update-v2 hands the next task over, `{}` bodies on DELETE."""

from __future__ import annotations

import httpx
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.task_result_status import TaskResultStatus

from tests.integration.conftest import Sdk
from tests.integration.sdk_support import wait_for

CHILD = {
    "name": "it_wire_child",
    "tasks": [{"name": "it_wire_wait", "taskReferenceName": "w", "type": "WAIT"}],
}
PARENT = {
    "name": "it_wire_parent",
    "tasks": [
        {
            "name": "sub",
            "taskReferenceName": "sub",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {
                "name": "it_wire_child",
                "version": 1,
                "idempotencyKey": "k-${workflow.input.k}",
                "idempotencyStrategy": "RETURN_EXISTING",
            },
        }
    ],
}
INTERNAL = {"restartGeneration", "scanFrom", "waitTimeout", "loopScope", "timerAt"}


def test_idempotency_strategy_and_internals_never_returned(sdk: Sdk, api: httpx.Client) -> None:
    assert api.put("/api/metadata/workflow", json=[CHILD, PARENT]).status_code == 200
    raw_def = api.get("/api/metadata/workflow/it_wire_parent").text
    assert "idempotencyStrategy" not in raw_def
    assert sdk.metadata.get_workflow_def("it_wire_parent").tasks[0].sub_workflow_param.name == (
        "it_wire_child"
    )
    workflow_id = api.post("/api/workflow/it_wire_parent", json={"k": 1}).text
    raw = api.get(f"/api/workflow/{workflow_id}").text
    assert "idempotencyStrategy" not in raw
    assert not any(f'"{name}"' in raw for name in INTERNAL)
    workflow = sdk.workflows.get_workflow(workflow_id)
    assert workflow is not None
    assert workflow.tasks[0].workflow_task.sub_workflow_param.idempotency_strategy is None
    api.delete(f"/api/workflow/{workflow_id}", params={"reason": "done"})


def test_update_v2_returns_the_next_task(sdk: Sdk, api: httpx.Client) -> None:
    wf = {
        "name": "it_wire_v2",
        "tasks": [
            {"name": "it_wire_v2_task", "taskReferenceName": "one"},
            {"name": "it_wire_v2_task", "taskReferenceName": "two"},
        ],
    }
    assert api.put("/api/metadata/workflow", json=[wf]).status_code == 200
    workflow_id = sdk.workflows.start_workflow_by_name("it_wire_v2", {}, version=1)
    [first] = sdk.tasks.batch_poll_tasks("it_wire_v2_task", "me", 5, 100)
    assert first.reference_task_name == "one"
    body = {
        "taskId": first.task_id,
        "workflowInstanceId": workflow_id,
        "workerId": "me",
        "status": "COMPLETED",
        "outputData": {"n": 1},
        "extendLease": False,
    }
    resp = api.post("/api/tasks/update-v2", json=body)
    assert resp.status_code == 200
    second = resp.json()
    assert second["referenceTaskName"] == "two"
    assert second["status"] == "IN_PROGRESS"
    assert second["workerId"] == "me"
    # The last task: nothing follows, 204.
    last = sdk.tasks.update_task(
        TaskResult(
            task_id=second["taskId"],
            workflow_instance_id=workflow_id,
            worker_id="me",
            status=TaskResultStatus.COMPLETED,
        )
    )
    assert last == second["taskId"]  # v1 answers the id as text/plain
    assert wait_for(sdk, workflow_id).status == "COMPLETED"
    assert sdk.tasks.batch_poll_tasks("it_wire_v2_task", "me", 5, 100) == []
    assert api.get("/api/tasks/poll/it_wire_v2_task").status_code == 204


def test_sdk_style_requests(api: httpx.Client) -> None:
    wf = {
        "name": "it_wire_style",
        "tasks": [{"name": "x", "taskReferenceName": "x", "type": "WAIT"}],
    }
    api.put("/api/metadata/workflow", json=[wf])
    resp = api.post(
        "/api/workflow/it_wire_style?version=1&correlationId=c+1",
        json={"a": 1},
        headers={"Accept": "text/plain"},
    )
    assert resp.headers["content-type"].startswith("text/plain")
    workflow_id = resp.text
    assert api.get(f"/api/workflow/{workflow_id}").json()["correlationId"] == "c 1"
    # DELETE with a `{}` body and urlencoded `True`, exactly as the SDK sends them.
    resp = api.request(
        "DELETE",
        f"/api/workflow/{workflow_id}?reason=probe+says+stop&triggerFailureWorkflow=True",
        content=b"{}",
    )
    assert resp.status_code == 200
    status = api.get(f"/api/workflow/{workflow_id}/status?includeOutput=true").json()
    assert status["status"] == "TERMINATED"
    assert status["output"] == {}
    assert (
        api.request(
            "POST", f"/api/workflow/{workflow_id}/restart?useLatestDefinitions=True", content=b"{}"
        ).status_code
        == 204
    )
    running = api.get("/api/workflow/running/it_wire_style").json()
    assert workflow_id in running
    resp = api.request(
        "DELETE", f"/api/workflow/{workflow_id}/remove?archiveWorkflow=True", content=b"{}"
    )
    assert resp.status_code == 200
    assert api.get(f"/api/workflow/{workflow_id}").status_code == 404
