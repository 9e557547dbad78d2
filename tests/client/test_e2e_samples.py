"""End to end: the kitchensink sample with the built-in workers, down both SWITCH branches."""

from __future__ import annotations

import pytest
import trio

from client import Backoff, ConductorApiError, ConductorClient, TaskRunner
from client.sample_workers import SAMPLE_WORKERS, expected_kitchensink_output
from core.enums import TaskStatus, WorkflowStatus
from core.models import StartWorkflowRequest
from server.samples import KITCHENSINK, load_samples
from tests.client.conftest import PodiumServer
from tests.client.e2e_support import start_runner, wait_terminal

pytestmark = pytest.mark.slow


async def _ensure_samples(client: ConductorClient) -> None:
    task_defs, workflow_defs = load_samples()
    await client.register_task_defs(task_defs)
    for wd in workflow_defs:
        try:
            await client.register_workflow_def(wd)
        except ConductorApiError as exc:
            if exc.status != 409:  # another test registered it already
                raise


async def test_kitchensink_both_branches(
    podium_server: PodiumServer, nursery: trio.Nursery
) -> None:
    url = podium_server.base_url
    async with ConductorClient(url) as client:
        await _ensure_samples(client)
        full = await client.start_workflow(
            StartWorkflowRequest(
                name=KITCHENSINK,
                input={"serverUrl": url, "mod": 6, "fanoutWidth": 4, "rounds": 2},
            )
        )
        stop = await client.start_workflow(
            StartWorkflowRequest(name=KITCHENSINK, input={"serverUrl": url, "mode": "stop"})
        )
        runner = TaskRunner(
            SAMPLE_WORKERS, url, poll_timeout_ms=1000, backoff=Backoff(max_s=1, jitter=0)
        )
        finished = await start_runner(nursery, runner)
        completed, terminated = await wait_terminal(client, [full, stop], timeout_s=60)
        runner.stop()
        with trio.fail_after(10):
            await finished.wait()

    assert completed.status is WorkflowStatus.COMPLETED, completed.reason_for_incompletion
    expected = expected_kitchensink_output(mod=6, fanout_width=4, rounds=2)
    assert {k: completed.output[k] for k in expected} == expected
    assert completed.output["report"]["foundItself"] is True
    assert full in completed.output["workflowIds"]
    refs = {t.reference_task_name: t for t in completed.tasks}
    assert refs["even_path"].status is TaskStatus.COMPLETED  # mod 6: the DECISION's "0"
    assert "odd_path" not in refs
    assert "stop_early" not in refs
    assert [r for r in refs if r.startswith("square_")] == [f"square_{i}" for i in range(4)]
    assert refs["search"].output_data["response"]["statusCode"] == 200
    assert refs["announce"].output_data["event_produced"] == f"conductor:{KITCHENSINK}:announce"

    assert terminated.status is WorkflowStatus.TERMINATED
    assert terminated.reason_for_incompletion == "mode=stop: ended before the fan-out"
    assert terminated.output == {"stopped": True}
    assert "fanout" not in {t.reference_task_name for t in terminated.tasks}
