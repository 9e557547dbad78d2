"""End to end: TaskRunner against a real `podium server` (subprocess, loopback HTTP)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio

from client import Backoff, ConductorClient, InProgress, NonRetryableError, TaskRunner, worker
from core.enums import TaskStatus, WorkflowStatus
from core.models import StartWorkflowRequest, Task, TaskDef, WorkflowDef
from tests.client.conftest import PodiumServer
from tests.client.e2e_support import register, simple, start_runner, unique, wait_terminal

pytestmark = pytest.mark.slow

FAST = Backoff(initial_s=0.05, max_s=0.5, jitter=0)
# A graceful stop lets the poll on the wire finish; 1 s keeps each test's stop short.
POLL_MS = 1000


def _task_def(name: str, retries: int = 0) -> TaskDef:
    return TaskDef(
        name=name,
        retry_count=retries,
        retry_delay_seconds=0,
        response_timeout_seconds=30,
        timeout_seconds=120,
        owner_email="client-tests@podium.invalid",
    )


async def _start(client: ConductorClient, name: str, inputs: list[dict[str, Any]]) -> list[str]:
    return [
        await client.start_workflow(StartWorkflowRequest(name=name, version=1, input=i))
        for i in inputs
    ]


async def test_runner_with_several_workers_completes_many_workflows(
    podium_server: PodiumServer, nursery: trio.Nursery
) -> None:
    add_t, mul_t, fmt_t = unique("add"), unique("mul"), unique("fmt")
    wf = WorkflowDef(
        name=unique("chain"),
        tasks=[
            simple(add_t, "add", a="${workflow.input.a}", b="${workflow.input.b}"),
            simple(mul_t, "mul", x="${add.output.sum}"),
            simple(fmt_t, "fmt", v="${mul.output.product}"),
        ],
        output_parameters={"text": "${fmt.output.result}"},
    )

    @worker(add_t)
    def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    @worker(mul_t)
    async def mul(x: int) -> dict[str, int]:
        await trio.sleep(0.01)
        return {"product": x * 10}

    @worker(fmt_t, poll_count=2)
    def fmt(v: int) -> str:
        return f"value={v}"  # a non-dict return becomes {"result": ...}

    async with ConductorClient(podium_server.base_url) as client:
        await register(client, wf, [_task_def(add_t), _task_def(mul_t), _task_def(fmt_t)])
        ids = await _start(client, wf.name, [{"a": i, "b": 1} for i in range(20)])
        runner = TaskRunner(
            [add, mul, fmt],
            podium_server.base_url,
            concurrency=4,
            backoff=FAST,
            poll_timeout_ms=POLL_MS,
        )
        finished = await start_runner(nursery, runner)
        done = await wait_terminal(client, ids)
        runner.stop()
        with trio.fail_after(10):
            await finished.wait()
    assert [w.status for w in done] == [WorkflowStatus.COMPLETED] * 20
    assert [w.output for w in done] == [{"text": f"value={(i + 1) * 10}"} for i in range(20)]
    assert runner.stats.completed == 60
    assert runner.stats.failed == runner.stats.updates_dropped == 0
    assert all(t.worker_id == runner.worker_id for w in done for t in w.tasks)


async def test_failures_are_retried_per_task_definition(
    podium_server: PodiumServer, nursery: trio.Nursery
) -> None:
    flaky_t, broken_t, terminal_t = unique("flaky"), unique("broken"), unique("terminal")

    @worker(flaky_t)
    def flaky(task: Task) -> dict[str, int]:
        if task.retry_count < 2:
            raise RuntimeError(f"attempt {task.retry_count} fails")
        return {"attempt": task.retry_count}

    @worker(broken_t)
    def broken() -> None:
        raise ValueError("always broken")

    @worker(terminal_t)
    def terminal() -> None:
        raise NonRetryableError("do not retry me")

    flows = {}
    for kind, task_type in (("flaky", flaky_t), ("broken", broken_t), ("terminal", terminal_t)):
        flows[kind] = WorkflowDef(name=unique(kind), tasks=[simple(task_type, "only")])
    async with ConductorClient(podium_server.base_url) as client:
        await client.register_task_defs(
            [_task_def(flaky_t, 2), _task_def(broken_t, 1), _task_def(terminal_t, 3)]
        )
        for wd in flows.values():
            await client.register_workflow_def(wd)
        ids = [(await _start(client, wd.name, [{}]))[0] for wd in flows.values()]
        runner = TaskRunner(
            [flaky, broken, terminal], podium_server.base_url, backoff=FAST, poll_timeout_ms=POLL_MS
        )
        finished = await start_runner(nursery, runner)
        ok, failed, stopped = await wait_terminal(client, ids)
        runner.stop()
        with trio.fail_after(10):
            await finished.wait()

    # flaky: retryCount 2 -> two failed attempts, the third completes
    assert ok.status is WorkflowStatus.COMPLETED
    assert [t.status for t in ok.tasks] == [
        TaskStatus.FAILED,
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
    ]
    assert [t.retry_count for t in ok.tasks] == [0, 1, 2]
    assert ok.tasks[0].reason_for_incompletion == "attempt 0 fails"
    assert ok.tasks[-1].output_data == {"attempt": 2}
    # broken: retryCount 1 -> two attempts, then the workflow fails with the reason
    assert failed.status is WorkflowStatus.FAILED
    assert [t.status for t in failed.tasks] == [TaskStatus.FAILED, TaskStatus.FAILED]
    assert failed.tasks[-1].reason_for_incompletion == "always broken"
    # terminal: NonRetryableError -> one attempt despite retryCount 3
    assert stopped.status is WorkflowStatus.FAILED
    assert [t.status for t in stopped.tasks] == [TaskStatus.FAILED_WITH_TERMINAL_ERROR]
    assert stopped.tasks[0].reason_for_incompletion == "do not retry me"


async def test_in_progress_callback_hands_the_same_task_back(
    podium_server: PodiumServer, nursery: trio.Nursery
) -> None:
    slow_t = unique("slow")
    seen: list[tuple[str, int]] = []

    @worker(slow_t)
    def slow(task: Task) -> Any:
        seen.append((task.task_id, task.poll_count))
        if task.poll_count < 3:
            return InProgress(callback_after_seconds=1, output={"checked": task.poll_count})
        return {"done_after_polls": task.poll_count}

    wf = WorkflowDef(name=unique("progress"), tasks=[simple(slow_t, "slow")])
    async with ConductorClient(podium_server.base_url) as client:
        await register(client, wf, [_task_def(slow_t)])
        [wid] = await _start(client, wf.name, [{}])
        runner = TaskRunner([slow], podium_server.base_url, backoff=FAST, poll_timeout_ms=POLL_MS)
        finished = await start_runner(nursery, runner)
        [done] = await wait_terminal(client, [wid])
        runner.stop()
        with trio.fail_after(10):
            await finished.wait()
    assert done.status is WorkflowStatus.COMPLETED
    [task] = done.tasks
    assert [s[1] for s in seen] == [1, 2, 3]
    assert {s[0] for s in seen} == {task.task_id}  # one task, handed back twice
    assert task.output_data == {"done_after_polls": 3}
    assert task.poll_count == 3
    assert runner.stats.in_progress == 2


async def test_graceful_shutdown_loses_no_task(
    podium_server: PodiumServer, nursery: trio.Nursery
) -> None:
    hold_t = unique("hold")
    started: list[str] = []
    both_started = trio.Event()
    release = trio.Event()

    @worker(hold_t)
    async def hold(task: Task) -> dict[str, str]:
        started.append(task.task_id)
        if len(started) == 2:
            both_started.set()
        await release.wait()
        return {"by": "first"}

    @worker(hold_t)
    def second(task: Task) -> dict[str, str]:
        return {"by": "second"}

    wf = WorkflowDef(name=unique("drain"), tasks=[simple(hold_t, "hold")])
    async with ConductorClient(podium_server.base_url) as client:
        await register(client, wf, [_task_def(hold_t)])
        ids = await _start(client, wf.name, [{}] * 5)
        first = TaskRunner(
            [hold], podium_server.base_url, concurrency=2, backoff=FAST, poll_timeout_ms=POLL_MS
        )
        finished = await start_runner(nursery, first)
        with trio.fail_after(10):
            await both_started.wait()
        first.stop()
        await trio.sleep(0.5)
        assert not finished.is_set()  # the two tasks in flight hold it open
        release.set()
        with trio.fail_after(10):
            await finished.wait()
        # The stopped runner reported both tasks and took no others.
        assert first.stats.tasks_received == 2
        assert first.stats.completed == 2
        # A second runner finds the other three still queued: nothing was lost.
        later = TaskRunner([second], podium_server.base_url, backoff=FAST, poll_timeout_ms=POLL_MS)
        finished_later = await start_runner(nursery, later)
        done = await wait_terminal(client, ids)
        later.stop()
        with trio.fail_after(10):
            await finished_later.wait()
    assert [w.status for w in done] == [WorkflowStatus.COMPLETED] * 5
    assert Counter(w.tasks[0].output_data["by"] for w in done) == {"first": 2, "second": 3}
    assert {w.tasks[0].task_id for w in done if w.tasks[0].output_data["by"] == "first"} == set(
        started
    )


async def test_worker_domain_polls_only_its_domain(
    podium_server: PodiumServer, nursery: trio.Nursery
) -> None:
    task_type = unique("dom")
    wf = WorkflowDef(name=unique("dom_wf"), tasks=[simple(task_type, "only")])

    @worker(task_type, domain="blue")
    def blue() -> dict[str, str]:
        return {"by": "blue"}

    @worker(task_type)
    def plain() -> dict[str, str]:
        return {"by": "no domain"}

    async with ConductorClient(podium_server.base_url) as client:
        await register(client, wf, [_task_def(task_type)])
        in_blue = await client.start_workflow(
            StartWorkflowRequest(name=wf.name, task_to_domain={task_type: "blue"})
        )
        unscoped = await client.start_workflow(StartWorkflowRequest(name=wf.name))
        # One runner may serve the same type twice when the domains differ.
        runner = TaskRunner(
            [blue, plain], podium_server.base_url, backoff=FAST, poll_timeout_ms=POLL_MS
        )
        finished = await start_runner(nursery, runner)
        blue_done, plain_done = await wait_terminal(client, [in_blue, unscoped])
        runner.stop()
        with trio.fail_after(10):
            await finished.wait()
    assert blue_done.tasks[0].output_data == {"by": "blue"}
    assert blue_done.tasks[0].domain == "blue"
    assert plain_done.tasks[0].output_data == {"by": "no domain"}
