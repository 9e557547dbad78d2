"""Conductor's own kitchensink (shared/conductor-samples) through the official SDK: the
task definitions and workflows are registered with MetadataClient, both DECISION
branches run (dynamic fork, and static fork of two sub-workflows), the HTTP task calls a
loopback endpoint, and the deep-scan output expressions are checked. The ephemeral
variants (inline workflowDef, inline taskDefinitions) start through `POST /api/workflow`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.models.task_def import TaskDef
from conductor.client.http.models.workflow_def import WorkflowDef

from tests.integration.conftest import Sdk
from tests.integration.sdk_support import drive, task_by_ref


def _load(shared_dir: Path, name: str) -> Any:
    return json.loads((shared_dir / "conductor-samples" / "kitchensink" / name).read_text())


def _point_http_at(definition: dict[str, Any], url: str) -> None:
    for task in definition["tasks"]:
        if task.get("type") == "HTTP":
            task["inputParameters"]["http_request"]["uri"] = url


def _answers(sdk: Sdk) -> dict[str, Any]:
    def dynamic_or_plain(task: Any) -> dict[str, Any]:
        if task.reference_task_name != "task_2":  # task_5 also runs inside sub_flow_1
            return {"ran": task.reference_task_name}
        wf_input = sdk.workflows.get_workflow(task.workflow_instance_id, False).input
        return {"oddEven": wf_input["oddEven"], "mod": wf_input["mod"]}

    def fan_out(task: Any) -> dict[str, Any]:
        return {
            "dynamicTasks": [
                {"name": "task_10", "taskReferenceName": "dyn_10", "type": "SIMPLE"},
                {"name": "task_11", "taskReferenceName": "dyn_11", "type": "SIMPLE"},
            ],
            "inputs": {"dyn_10": {"k": 10}, "dyn_11": {"k": 11}},
        }

    def plain(task: Any) -> dict[str, Any]:
        return {"ran": task.reference_task_name, "k": task.input_data.get("k")}

    answers: dict[str, Any] = {f"task_{i}": plain for i in (1, 6, 10, 11, 30)}
    answers["task_5"] = dynamic_or_plain
    answers["task_4"] = fan_out
    return answers


def test_kitchensink_both_branches(sdk: Sdk, shared_dir: Path, echo_url: str) -> None:
    for raw in _load(shared_dir, "kitchensink_taskdefs.json"):
        sdk.metadata.register_task_def(TaskDef(**_snake(raw)))
    sub_flow = _load(shared_dir, "sub_flow_1.json")
    kitchensink = _load(shared_dir, "kitchensink.json")
    _point_http_at(kitchensink, f"{echo_url}/search?size=10")
    client = sdk.metadata.api_client
    for definition in (sub_flow, kitchensink):
        sdk.metadata.register_workflow_def(
            client.deserialize_class(definition, WorkflowDef), overwrite=True
        )

    ids = [
        sdk.workflows.start_workflow(
            StartWorkflowRequest(
                name="kitchensink",
                version=1,
                input={"task2Name": "task_5", "mod": 1, "oddEven": odd_even},
            )
        )
        for odd_even in (0, 1)
    ]
    even, odd = drive(sdk, ids, _answers(sdk), timeout=60)

    for run in (even, odd):
        assert run.status == "COMPLETED", run.reason_for_incompletion
        assert run.output == {"statues": ["COMPLETED", "FAILED"], "workflowIds": ["wf-1", "wf-2"]}
        assert task_by_ref(run, "task_2").task_type == "task_5"
        assert task_by_ref(run, "event_0").status == "COMPLETED"
        assert task_by_ref(run, "get_es_1").output_data["response"]["statusCode"] == 200

    assert task_by_ref(even, "join1").output_data == {
        "dyn_10": {"ran": "dyn_10", "k": 10},
        "dyn_11": {"ran": "dyn_11", "k": 11},
    }
    assert "forkx" not in [t.reference_task_name for t in even.tasks]
    for ref in ("wf3", "wf4"):
        sub = task_by_ref(odd, ref)
        assert sub.status == "COMPLETED"
        child = sdk.workflows.get_workflow(sub.sub_workflow_id)
        assert child.workflow_name == "sub_flow_1"
        assert [t.reference_task_name for t in child.tasks] == ["task_5", "task_6"]
    assert "fanout1" not in [t.reference_task_name for t in odd.tasks]


def test_ephemeral_kitchensink_requests(sdk: Sdk, api: httpx.Client, shared_dir: Path) -> None:
    for raw in _load(shared_dir, "kitchensink_taskdefs.json"):
        sdk.metadata.register_task_def(TaskDef(**_snake(raw)))
    for name in (
        "kitchenSink-ephemeralWorkflowWithStoredTasks.json",
        "kitchenSink-ephemeralWorkflowWithEphemeralTasks.json",
    ):
        request = _load(shared_dir, name)
        resp = api.post("/api/workflow", json=request, headers={"Accept": "text/plain"})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/plain")
        workflow_id = resp.text
        workflow = api.get(f"/api/workflow/{workflow_id}").json()
        assert workflow["workflowDefinition"]["name"] == request["workflowDef"]["name"]
        assert workflow["status"] == "RUNNING"
        first = workflow["tasks"][0]
        assert first["status"] == "SCHEDULED"
        api.delete(f"/api/workflow/{workflow_id}", params={"reason": "done"})
        assert api.get(f"/api/workflow/{workflow_id}").json()["status"] == "TERMINATED"


def _snake(raw: dict[str, Any]) -> dict[str, Any]:
    # The SDK's TaskDef takes snake_case keyword arguments.
    out = {}
    for key, value in raw.items():
        out["".join(f"_{c.lower()}" if c.isupper() else c for c in key)] = value
    return out
