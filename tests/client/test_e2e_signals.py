"""End to end: SIGTERM to a process in `TaskRunner.run_sync()` drains, loses nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from client import ConductorClient
from core.enums import TaskStatus, WorkflowStatus
from core.models import StartWorkflowRequest, TaskDef, WorkflowDef
from tests.client.conftest import PodiumServer
from tests.client.e2e_support import simple, unique, wait_terminal

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


async def test_sigterm_finishes_the_task_in_flight_then_exits(
    podium_server: PodiumServer,
) -> None:
    task_type = unique("sig")
    wf = WorkflowDef(
        name=unique("sig_wf"), tasks=[simple(task_type, "step", n="${workflow.input.n}")]
    )
    async with ConductorClient(podium_server.base_url) as client:
        await client.register_task_defs(
            [TaskDef(name=task_type, retry_count=0, response_timeout_seconds=60)]
        )
        await client.register_workflow_def(wf)
        first = await client.start_workflow(StartWorkflowRequest(name=wf.name, input={"n": 1}))
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tests.client.signal_worker", podium_server.base_url, task_type],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert process.stdout is not None
        output = b""
        with trio.fail_after(20):
            while b"started 1" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, output.decode()
                output += chunk
            # A second workflow started now must not be taken by the stopping runner.
            process.send_signal(signal.SIGTERM)
            second = await client.start_workflow(StartWorkflowRequest(name=wf.name, input={"n": 2}))
            while chunk := await process.stdout.receive_some():
                output += chunk
            await process.wait()
        text = output.decode()
        assert process.returncode == 0, text
        assert "stopped 1" in text
        assert "started 2" not in text
        [done] = await wait_terminal(client, [first])
        pending = await client.get_workflow(second)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.tasks[0].output_data == {"n": 1, "finished": 1}
    assert pending.status is WorkflowStatus.RUNNING
    assert [t.status for t in pending.tasks] == [TaskStatus.SCHEDULED]
