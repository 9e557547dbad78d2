"""The official SDK driving workflows from outside: WAIT and HUMAN tasks completed
through the API, EVENT tasks and event handlers, pause/resume/terminate/restart/rerun,
worker retries and IN_PROGRESS callbacks, task logs, search and queue sizes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conductor.client.http.models.rerun_workflow_request import RerunWorkflowRequest
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.rest import ApiException
from conductor.client.workflow.conductor_workflow import ConductorWorkflow
from conductor.client.workflow.task.event_task import ConductorEventTask
from conductor.client.workflow.task.human_task import HumanTask
from conductor.client.workflow.task.simple_task import SimpleTask
from conductor.client.workflow.task.wait_task import WaitTask

from tests.integration.conftest import Sdk
from tests.integration.sdk_support import task_by_ref, wait_for, wait_for_task

pytestmark = pytest.mark.usefixtures("sdk_workers")


def _workflow(sdk: Sdk, name: str) -> ConductorWorkflow:
    return ConductorWorkflow(executor=sdk.executor, name=name, version=1).owner_email(
        "it@example.com"
    )


def _simple(name: str, ref: str, inputs: dict[str, Any]) -> SimpleTask:
    task = SimpleTask(name, ref)
    task.input_parameters.update(inputs)
    return task


def _start(sdk: Sdk, name: str, wf_input: dict[str, Any] | None = None, **kw: Any) -> str:
    workflow_id: str = sdk.workflows.start_workflow(
        StartWorkflowRequest(name=name, version=1, input=wf_input or {}, **kw)
    )
    return workflow_id


def test_wait_and_human_completed_through_the_api(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_wait_human")
    wf.add(WaitTask("wait")).add(HumanTask("human", display_name="approve"))
    wf.output_parameters({"wait": "${wait.output}", "human": "${human.output}"})
    wf.register(overwrite=True)
    workflow_id = _start(sdk, "it_wait_human")

    wait_for_task(sdk, workflow_id, "wait")
    # TaskClient wraps the output as {"result": output} (sdk-wire 0.12).
    task_id = sdk.tasks.update_task_by_ref_name(workflow_id, "wait", "COMPLETED", {"ok": 1})
    assert task_by_ref(sdk.workflows.get_workflow(workflow_id), "wait").task_id == task_id

    wait_for_task(sdk, workflow_id, "human")
    after = sdk.tasks.update_task_sync(workflow_id, "human", "COMPLETED", {"approved": True})
    assert after.workflow_id == workflow_id
    done = wait_for(sdk, workflow_id)
    assert done.status == "COMPLETED"
    assert done.output == {"wait": {"result": {"ok": 1}}, "human": {"approved": True}}


def test_event_task_runs_handler_and_publish_endpoint(sdk: Sdk, api: httpx.Client) -> None:
    child = _workflow(sdk, "it_event_child")
    child.add(_simple("it_add", "c_add", {"a": "${workflow.input.n}", "b": 1}))
    child.register(overwrite=True)
    handler = {
        "name": "it_start_child",
        "event": "conductor:it_event_flow:it_signal",
        "active": True,
        "actions": [
            {
                "action": "start_workflow",
                "start_workflow": {
                    "name": "it_event_child",
                    "version": 1,
                    "correlationId": "${workflowInstanceId}",
                    "input": {"n": "${n}"},
                },
            }
        ],
    }
    completer = {
        "name": "it_complete_wait",
        "event": "it_external:approvals",
        "active": True,
        "actions": [
            {
                "action": "complete_task",
                "complete_task": {
                    "workflowId": "${workflowId}",
                    "taskRefName": "gate",
                    "output": {"by": "${who}"},
                },
            }
        ],
    }
    for body in (handler, completer):
        api.delete(f"/api/event/{body['name']}")
        assert api.post("/api/event", json=body).status_code == 200
    assert api.post("/api/event", json=handler).status_code == 409
    listed = api.get("/api/event/conductor:it_event_flow:it_signal").json()
    assert [h["name"] for h in listed] == ["it_start_child"]

    wf = _workflow(sdk, "it_event_flow")
    event = ConductorEventTask("notify", "it_signal")
    event.input_parameter("n", "${workflow.input.n}")
    wf.add(event).add(WaitTask("gate"))
    wf.register(overwrite=True)
    workflow_id = _start(sdk, "it_event_flow", {"n": 41})

    wait_for_task(sdk, workflow_id, "gate")
    notify = task_by_ref(sdk.workflows.get_workflow(workflow_id), "notify")
    assert notify.status == "COMPLETED"
    assert notify.output_data["event_produced"] == "conductor:it_event_flow:it_signal"
    children = api.get(
        f"/api/workflow/it_event_child/correlated/{workflow_id}?includeClosed=true"
    ).json()
    assert len(children) == 1
    assert wait_for(sdk, children[0]["workflowId"]).status == "COMPLETED"

    resp = api.post(
        "/api/event/publish/it_external:approvals",
        json={"workflowId": workflow_id, "who": "alice"},
    )
    assert resp.status_code == 200
    assert resp.json() == {"queue": "it_external:approvals", "actionsRun": 1}
    done = wait_for(sdk, workflow_id)
    assert done.status == "COMPLETED"
    assert task_by_ref(done, "gate").output_data == {"by": "alice"}


def test_pause_resume_terminate_restart_and_rerun(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_lifecycle")
    wf.add(WaitTask("hold")).add(
        _simple("it_flaky", "flaky", {"terminal": "${workflow.input.terminal}"})
    )
    wf.register(overwrite=True)
    workflow_id = _start(sdk, "it_lifecycle", {"terminal": True})
    wait_for_task(sdk, workflow_id, "hold")

    sdk.workflows.pause_workflow(workflow_id)
    assert sdk.workflows.get_workflow_status(workflow_id).status == "PAUSED"
    sdk.workflows.pause_workflow(workflow_id)  # already paused: a no-op, as Conductor
    sdk.workflows.resume_workflow(workflow_id)
    assert sdk.workflows.get_workflow_status(workflow_id).status == "RUNNING"
    with pytest.raises(ApiException) as resumed:
        sdk.workflows.resume_workflow(workflow_id)
    assert resumed.value.status == 409

    sdk.workflows.terminate_workflow(workflow_id, reason="operator says stop")
    stopped = sdk.workflows.get_workflow(workflow_id)
    assert stopped.status == "TERMINATED"
    assert stopped.reason_for_incompletion == "operator says stop"

    sdk.workflows.restart_workflow(workflow_id)
    wait_for_task(sdk, workflow_id, "hold")
    sdk.tasks.update_task_by_ref_name(workflow_id, "hold", "COMPLETED", {})
    failed = wait_for(sdk, workflow_id)
    # NonRetryableException: FAILED_WITH_TERMINAL_ERROR, no retries, workflow FAILED.
    assert failed.status == "FAILED"
    flaky = task_by_ref(failed, "flaky")
    assert flaky.status == "FAILED_WITH_TERMINAL_ERROR"
    assert flaky.reason_for_incompletion == "deliberate terminal failure"

    rerun_id = sdk.workflows.rerun_workflow(
        workflow_id,
        RerunWorkflowRequest(re_run_from_task_id=flaky.task_id, task_input={"terminal": False}),
    )
    assert rerun_id == workflow_id
    done = wait_for(sdk, workflow_id)
    assert done.status == "COMPLETED", done.reason_for_incompletion
    assert task_by_ref(done, "flaky").output_data == {"attempt": 0}


def test_worker_retries_and_in_progress_callback(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_retries")
    wf.add(_simple("it_flaky", "flaky", {"succeed_on": 2}))
    wf.add(SimpleTask("it_progress", "progress"))
    wf.register(overwrite=True)
    workflow_id = _start(sdk, "it_retries")
    done = wait_for(sdk, workflow_id, timeout=30)
    assert done.status == "COMPLETED", done.reason_for_incompletion
    attempts = [t for t in done.tasks if t.reference_task_name == "flaky"]
    assert [t.status for t in attempts] == ["FAILED", "FAILED", "COMPLETED"]
    assert [t.retry_count for t in attempts] == [0, 1, 2]
    assert attempts[0].reason_for_incompletion == "deliberate failure on attempt 0"
    logs = sdk.tasks.get_task_logs(attempts[0].task_id)
    assert any("RuntimeError: deliberate failure on attempt 0" in x.log for x in logs)
    progress = task_by_ref(done, "progress")
    assert progress.output_data == {"progress": 100, "polls": 2}


def test_task_logs_search_and_queue_sizes(sdk: Sdk) -> None:
    wf = _workflow(sdk, "it_search")
    wf.add(WaitTask("parked"))
    wf.register(overwrite=True)
    ids = [_start(sdk, "it_search", {"i": i}, correlation_id=f"it-s-{i}") for i in range(3)]
    for workflow_id in ids:
        wait_for_task(sdk, workflow_id, "parked")
    parked = task_by_ref(sdk.workflows.get_workflow(ids[0]), "parked")
    sdk.tasks.add_task_log(parked.task_id, 'line "one"')
    sdk.tasks.add_task_log(parked.task_id, "line two")
    logs = [x.log for x in sdk.tasks.get_task_logs(parked.task_id)]
    assert logs[-1] == "line two"
    assert len(logs) == 2

    found = sdk.workflows.search(query="workflowType = 'it_search' AND status = 'RUNNING'")
    # The SDK reads only `results` of a search answer (no totalHits in its model).
    assert {s.workflow_id for s in found.results} == set(ids)
    one = sdk.workflows.search(free_text="it-s-1", query="workflowType = 'it_search'")
    assert [s.workflow_id for s in one.results] == [ids[1]]
    sdk.tasks.update_task_by_ref_name(ids[0], "parked", "COMPLETED", {})
    assert wait_for(sdk, ids[0]).status == "COMPLETED"
    by_corr = sdk.workflows.get_by_correlation_ids("it_search", ["it-s-0", "it-s-2"])
    assert [w.workflow_id for w in by_corr["it-s-2"]] == [ids[2]]
    assert by_corr["it-s-0"] == []  # finished, and includeClosed defaults to false
    for workflow_id in ids[1:]:
        sdk.workflows.terminate_workflow(workflow_id, reason="cleanup")
    assert sdk.tasks.get_queue_size_for_task("it_add") == 0


def test_correlation_batch_search(sdk: Sdk) -> None:
    from conductor.client.http.models.correlation_ids_search_request import (
        CorrelationIdsSearchRequest,
    )

    wf = _workflow(sdk, "it_corr_batch")
    wf.add(WaitTask("parked"))
    wf.register(overwrite=True)
    first = _start(sdk, "it_corr_batch", correlation_id="it-cb-1")
    second = _start(sdk, "it_corr_batch", correlation_id="it-cb-2")
    found = sdk.workflows.get_by_correlation_ids_in_batch(
        CorrelationIdsSearchRequest(
            correlation_ids=["it-cb-1", "it-cb-2", "it-cb-none"],
            workflow_names=["it_corr_batch"],
        ),
        include_tasks=True,
    )
    assert [w.workflow_id for w in found["it-cb-1"]] == [first]
    assert [w.workflow_id for w in found["it-cb-2"]] == [second]
    assert found["it-cb-none"] == []
    assert found["it-cb-1"][0].tasks[0].reference_task_name == "parked"
    for workflow_id in (first, second):
        sdk.workflows.terminate_workflow(workflow_id, reason="cleanup")
