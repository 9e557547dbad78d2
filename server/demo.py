"""The work behind `podium demo` (server/cli_demo.py): run `podium_kitchensink` end to end.

Rules:
- With `--server`, the demo uses that server. Without it, it starts its own
  `podium server` as a child process on a free loopback port with a SQLite store in a
  temporary folder, and always stops it (SIGTERM, then a kill after a grace period) and
  deletes the folder afterwards, also on errors and Ctrl-C.
- Sample definitions are registered only where missing: a server that already has
  `podium_kitchensink` keeps its version.
- The built-in sample workers run in this process (`client.TaskRunner`) until the run
  ends or `--timeout` passes; the runner then stops gracefully.
- Prints the run's status, its tasks and its output. Exit status 0 only if the workflow
  COMPLETED; 1 otherwise (a failed run, a timeout, or a server that cannot be reached).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator

import trio

from client.api import ConductorApiError, ConductorClient, api_base_url
from client.http import TransportError
from client.runner import TaskRunner
from client.sample_workers import SAMPLE_WORKERS
from core import codec
from core.enums import WORKFLOW_TERMINAL, WorkflowStatus
from core.models import StartWorkflowRequest, Workflow
from server.samples import KITCHENSINK, load_samples

_LISTENING = re.compile(r"listening on (https?://\S+)")
# How long a started server may take to print its address, and to stop when asked.
SERVER_START_S = 60.0
SERVER_STOP_S = 15.0


class DemoError(Exception):
    """Something the user should read; printed as `podium demo: <message>`."""


def run_demo(server_url: str | None, timeout_s: float, mod: int) -> int:
    """Run the demo and print the outcome.

    Args:
        server_url: a running server to use, or None to start one.
        timeout_s: how long to wait for the run to finish.
        mod: the sample's `mod` input.

    Returns:
        The exit status: 0 only if the workflow COMPLETED.
    """
    status: WorkflowStatus | None = None
    try:
        status = trio.run(_demo, server_url, timeout_s, mod)
    except* DemoError as group:  # nurseries wrap what their tasks raise
        for exc in group.exceptions:
            print(f"podium demo: {exc}", file=sys.stderr)
    return 0 if status is WorkflowStatus.COMPLETED else 1


def _say(message: str) -> None:
    print(f"podium demo: {message}", flush=True)


async def _demo(server_url: str | None, timeout_s: float, mod: int) -> WorkflowStatus | None:
    if server_url is not None:
        return await _run_sample(server_url, timeout_s, mod)
    folder = tempfile.mkdtemp(prefix="podium-demo-")
    try:
        async with trio.open_nursery() as nursery:
            server = _ChildServer(os.path.join(folder, "podium.db"))
            url = await nursery.start(server.run)
            try:
                return await _run_sample(url, timeout_s, mod)
            finally:
                server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _ChildServer:
    """A `podium server` child process on a free loopback port."""

    def __init__(self, db_path: str) -> None:
        self.store_url = f"sqlite:///{db_path}"
        self.log_tail: deque[str] = deque(maxlen=30)
        self._stop = trio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        # `-c` rather than `-m server.cli`: run as __main__, server.cli would be imported a
        # second time and the subcommands would register into the other copy.
        command = [
            sys.executable,
            "-c",
            "import sys; from server.cli import main; sys.exit(main())",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--store",
            self.store_url,
        ]
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            assert process.stderr is not None
            lines = _lines(process.stderr)
            url: str | None = None
            with trio.move_on_after(SERVER_START_S):
                async for line in lines:
                    self.log_tail.append(line)
                    if match := _LISTENING.search(line):
                        url = match.group(1)
                        break
            if url is None:
                await _end(process)
                tail = "\n  ".join(self.log_tail) or "(no output)"
                raise DemoError(
                    f"the podium server did not start (exit status {process.returncode}); "
                    f"its last output:\n  {tail}"
                )
            _say(f"started a podium server at {url} (store {self.store_url})")
            task_status.started(url)
            async with trio.open_nursery() as nursery:
                # Keep reading its log: a full pipe would block the server's logging.
                nursery.start_soon(self._drain, lines)
                await self._stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await _end(process)

    async def _drain(self, lines: AsyncIterator[str]) -> None:
        async for line in lines:
            self.log_tail.append(line)


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    buffer = b""
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            if buffer:
                yield buffer.decode(errors="replace")
            return
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            yield raw.decode(errors="replace")


async def _end(process: trio.Process) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it does not exit in time."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(SERVER_STOP_S):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


async def _run_sample(url: str, timeout_s: float, mod: int) -> WorkflowStatus | None:
    try:
        # The sample's HTTP task appends /api/... itself: hand it the server's root.
        root = api_base_url(url).removesuffix("/api")
    except ValueError as exc:
        raise DemoError(str(exc)) from exc
    async with ConductorClient(url) as client:
        try:
            await _register_missing(client)
            workflow_id = await client.start_workflow(
                StartWorkflowRequest(name=KITCHENSINK, input={"serverUrl": root, "mod": mod})
            )
        except (TransportError, ConductorApiError) as exc:
            raise DemoError(f"cannot use the server at {url}: {exc}") from exc
        _say(f"started {KITCHENSINK} run {workflow_id}; running the sample workers")
        runner = TaskRunner(SAMPLE_WORKERS, url, poll_timeout_ms=1000, client=client)
        began = time.monotonic()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(runner.run)
            try:
                workflow = await _wait_for_end(client, workflow_id, timeout_s)
            finally:
                runner.stop()
        elapsed = time.monotonic() - began
    if workflow is None:
        _say(f"run {workflow_id} did not finish within {timeout_s:g}s")
        return None
    _report(workflow, elapsed)
    return workflow.status


async def _register_missing(client: ConductorClient) -> None:
    task_defs, workflow_defs = load_samples()
    known = {td.name for td in await client.get_task_defs()}
    missing_tasks = [td for td in task_defs if td.name not in known]
    if missing_tasks:
        await client.register_task_defs(missing_tasks)
    added = 0
    # The sub-workflow first: nothing may start the kitchensink before its child exists.
    for wd in sorted(workflow_defs, key=lambda w: w.name == KITCHENSINK):
        try:
            await client.get_workflow_def(wd.name, wd.version)
        except ConductorApiError as exc:
            if exc.status != 404:
                raise
            await client.register_workflow_def(wd)
            added += 1
    _say(
        f"registered {len(missing_tasks)} task and {added} workflow definitions "
        f"({len(task_defs) - len(missing_tasks)} and {len(workflow_defs) - added} were there)"
    )


async def _wait_for_end(
    client: ConductorClient, workflow_id: str, timeout_s: float
) -> Workflow | None:
    with trio.move_on_after(timeout_s):
        while True:
            status = await client.get_workflow_status(workflow_id)
            if status.status in WORKFLOW_TERMINAL:
                return await client.get_workflow(workflow_id)
            await trio.sleep(0.25)
    return None


def _report(workflow: Workflow, elapsed: float) -> None:
    _say(f"run {workflow.workflow_id} finished in {elapsed:.1f}s: {workflow.status.value}")
    if workflow.reason_for_incompletion:
        _say(f"reason: {workflow.reason_for_incompletion}")
    width = max((len(t.reference_task_name) for t in workflow.tasks), default=0)
    for task in workflow.tasks:
        print(f"  {task.reference_task_name:<{width}}  {task.task_type:<20} {task.status.value}")
    print("output:")
    print(json.dumps(codec.to_builtins(workflow.output), indent=2, sort_keys=True))
    print(f"status: {workflow.status.value}")
