"""End to end: ConductorClient against a real `podium server`."""

from __future__ import annotations

import pytest
import trio

from client import ConductorApiError, ConductorClient
from core.enums import TaskResultStatus, TaskStatus, WorkflowStatus
from core.models import StartWorkflowRequest, TaskDef, TaskResult, WorkflowDef, WorkflowTask
from tests.client.conftest import PodiumServer
from tests.client.e2e_support import simple, unique, wait_terminal

pytestmark = pytest.mark.slow


async def test_metadata_round_trip(podium_server: PodiumServer) -> None:
    name = unique("meta")
    async with ConductorClient(podium_server.api_url) as client:
        await client.register_task_defs([TaskDef(name=name, retry_count=5)])
        assert (await client.get_task_def(name)).retry_count == 5
        await client.update_task_def(TaskDef(name=name, retry_count=1))
        assert (await client.get_task_def(name)).retry_count == 1
        assert name in {td.name for td in await client.get_task_defs()}
        wf = WorkflowDef(name=unique("meta_wf"), tasks=[simple(name, "t")])
        await client.register_workflow_def(wf)
        with pytest.raises(ConductorApiError) as again:
            await client.register_workflow_def(wf)
        assert again.value.status == 409
        await client.register_workflow_def(wf, overwrite=True)
        v2 = WorkflowDef(name=wf.name, version=2, tasks=wf.tasks)
        bulk = await client.update_workflow_defs([v2])
        assert bulk.bulk_error_results == {}
        assert (await client.get_workflow_def(wf.name)).version == 2
        assert (await client.get_workflow_def(wf.name, 1)).version == 1
        await client.delete_workflow_def(wf.name, 2)
        assert (await client.get_workflow_def(wf.name)).version == 1
        await client.delete_task_def(name)
        with pytest.raises(ConductorApiError) as gone:
            await client.get_task_def(name)
    assert gone.value.status == 404
    assert name in gone.value.message


async def test_workflow_lifecycle_and_task_calls(podium_server: PodiumServer) -> None:
    task_type = unique("life")
    wf = WorkflowDef(
        name=unique("life_wf"),
        tasks=[simple(task_type, "step", x="${workflow.input.x}")],
        output_parameters={"y": "${step.output.y}"},
    )
    async with ConductorClient(podium_server.base_url) as client:
        await client.register_task_defs(
            [TaskDef(name=task_type, retry_count=0, response_timeout_seconds=30)]
        )
        await client.register_workflow_def(wf)
        wid = await client.start_workflow_by_name(wf.name, {"x": 2}, correlation_id="c-1")

        await client.pause_workflow(wid)
        assert (await client.get_workflow_status(wid)).status is WorkflowStatus.PAUSED
        await client.resume_workflow(wid)
        assert (await client.get_workflow_status(wid)).status is WorkflowStatus.RUNNING

        [task] = await client.batch_poll(task_type, count=5, timeout_ms=2000, worker_id="me")
        assert task.input_data == {"x": 2}
        assert task.status is TaskStatus.IN_PROGRESS
        await client.add_task_log(task.task_id, "halfway there")
        assert [entry.log for entry in await client.get_task_logs(task.task_id)] == [
            "halfway there"
        ]
        nxt = await client.update_task_v2(
            TaskResult(
                workflow_instance_id=wid,
                task_id=task.task_id,
                status=TaskResultStatus.FAILED,
                reason_for_incompletion="first try fails",
            )
        )
        assert nxt is None
        [failed] = await wait_terminal(client, [wid])
        assert failed.status is WorkflowStatus.FAILED
        assert failed.correlation_id == "c-1"

        await client.retry_workflow(wid)
        retried = await client.poll_task(task_type, worker_id="me")
        assert retried is not None
        assert retried.retry_count == 1
        assert (
            await client.update_task(
                TaskResult(
                    workflow_instance_id=wid,
                    task_id=retried.task_id,
                    status=TaskResultStatus.COMPLETED,
                    output_data={"y": 20},
                )
            )
            == retried.task_id
        )
        [ok] = await wait_terminal(client, [wid])
        assert ok.status is WorkflowStatus.COMPLETED
        assert ok.output == {"y": 20}
        assert (await client.get_task(retried.task_id)).output_data == {"y": 20}
        status = await client.get_workflow_status(wid, include_output=True)
        assert status.output == {"y": 20}

        await client.restart_workflow(wid)
        assert (await client.get_workflow_status(wid)).status is WorkflowStatus.RUNNING
        await client.terminate_workflow(wid, reason="enough")
        terminated = await client.get_workflow(wid, include_tasks=False)
        assert terminated.status is WorkflowStatus.TERMINATED
        assert terminated.reason_for_incompletion == "enough"
        assert terminated.tasks == []

        with trio.fail_after(10):
            while True:  # search is indexed on commit; give it a moment
                found = await client.search_workflows(f"workflowType = '{wf.name}'")
                if found.total_hits:
                    break
                await trio.sleep(0.1)
        assert [s.workflow_id for s in found.results] == [wid]
        assert found.results[0].status is WorkflowStatus.TERMINATED


async def test_inline_definition_start_and_error_answers(podium_server: PodiumServer) -> None:
    async with ConductorClient(podium_server.base_url) as client:
        inline = WorkflowDef(
            name=unique("inline"),
            tasks=[
                WorkflowTask(
                    name="noop",
                    task_reference_name="noop",
                    type="NOOP",
                )
            ],
        )
        wid = await client.start_workflow(
            StartWorkflowRequest(name=inline.name, workflow_def=inline, input={})
        )
        [done] = await wait_terminal(client, [wid])
        assert done.status is WorkflowStatus.COMPLETED

        with pytest.raises(ConductorApiError) as missing:
            await client.start_workflow_by_name(unique("no_such_workflow"), {})
        with pytest.raises(ConductorApiError) as bad_poll:
            await client.batch_poll("x", count=1, timeout_ms=6000)
        assert await client.poll_task(unique("empty_queue")) is None
        assert await client.batch_poll(unique("empty_queue"), timeout_ms=10) == []
    assert missing.value.status == 404
    assert bad_poll.value.status == 400
    assert "5 seconds" in bad_poll.value.message
