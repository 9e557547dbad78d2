"""A load-harness worker process: serves the load task type until SIGTERM.

Run by bench/load.py as `python -m bench.load_worker URL STATS_FILE [--sdk] ...`.

Rules: the worker does no work beyond recording, for each task it receives, the
dispatch latency `now - task.scheduledTime` (ms, same machine so one clock), and
answering `{"ok": true}`. With Podium's client (default) it runs client.TaskRunner
(trio, batch long-poll, an async worker function: no thread per task) through a
RecordingClient, which also records:
- per task whether it came through the server's queue (a poll's answer, or update-v2's
  answer holding another workflow's task: update-v2 polls when it hands nothing off) or
  from update-v2's hand-off (the same workflow's next task, never queued), so the queue
  path's dispatch latency is reported apart;
- whether all slots were taken (seconds with every slot busy: tasks queued meanwhile
  wait for a slot, not for the server);
- with `--final-ref REF`, when the update-v2 answer for a completed task REF returned:
  the workflow ended in that update's commit (REF is the workflow's last task), so this
  is its completion as the worker sees it. These `workflow_id ms` lines are appended
  to STATS_FILE with suffix `.done` every 50 ms, for bench/load.py to follow without
  asking the server.
With `--sdk` it runs conductor-python's TaskHandler (dispatch latency only). On SIGTERM
it drains, then writes the figures as JSON to STATS_FILE. STATS_FILE with suffix
`.ready` is created once the worker polls.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.load_workloads import LOAD_TASK

dispatch_ms: list[float] = []
stats: dict[str, Any] = {}


def _record(scheduled_ms: int | None) -> None:
    if scheduled_ms:
        dispatch_ms.append(time.time() * 1000 - scheduled_ms)


def run_podium(
    url: str, concurrency: int, worker_id: str, ready: Path, final_ref: str | None
) -> None:
    import trio

    from client import ConductorClient, TaskRunner, worker
    from core.models import Task, TaskResult

    queued_ms: list[float] = []
    done_lines: list[str] = []
    final_tasks: dict[str, str] = {}  # task id -> workflow id, for tasks named final_ref
    slots = {"in_flight": 0, "full_since": 0.0, "full_s": 0.0, "max": 0}

    class RecordingClient(ConductorClient):
        async def batch_poll(self, task_type: str, **kwargs: Any) -> list[Task]:
            tasks = await super().batch_poll(task_type, **kwargs)
            now = time.time() * 1000
            for task in tasks:
                if task.scheduled_time:
                    queued_ms.append(now - task.scheduled_time)
            slots["in_flight"] += len(tasks)
            slots["max"] = max(slots["max"], slots["in_flight"])
            if tasks and slots["in_flight"] >= concurrency:
                slots["full_since"] = time.monotonic()
            return tasks

        async def update_task_v2(self, result: TaskResult) -> Task | None:
            task = await super().update_task_v2(result)
            other = task is not None and task.workflow_instance_id != result.workflow_instance_id
            if other and task is not None and task.scheduled_time:
                # Not a hand-off (another workflow's task): update-v2 polled it.
                queued_ms.append(time.time() * 1000 - task.scheduled_time)
            workflow_id = final_tasks.pop(result.task_id, None)
            if workflow_id is not None:
                done_lines.append(f"{workflow_id} {time.time() * 1000:.3f}\n")
            if task is None:  # the chain ends: its slot is free again
                if slots["in_flight"] >= concurrency:
                    slots["full_s"] += time.monotonic() - slots["full_since"]
                slots["in_flight"] -= 1
            return task

    @worker(LOAD_TASK, poll_count=concurrency)
    async def load_task(task: Task) -> dict[str, Any]:
        _record(task.scheduled_time)
        if task.reference_task_name == final_ref and task.workflow_instance_id:
            final_tasks[task.task_id] = task.workflow_instance_id
        return {"ok": True, "n": 1}

    done_path = ready.with_suffix(".done")

    async def flush_done() -> None:
        with done_path.open("a") as out:
            while True:
                if done_lines:
                    out.write("".join(done_lines))
                    out.flush()
                    done_lines.clear()
                await trio.sleep(0.05)

    async def serve() -> None:
        client = RecordingClient(url, max_connections=concurrency + 2)
        runner = TaskRunner([load_task], url, worker_id=worker_id, client=client)
        try:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with trio.open_nursery() as outer:
                    outer.start_soon(flush_done)
                    async with trio.open_nursery() as nursery:
                        await nursery.start(runner.run)
                        ready.touch()  # noqa: ASYNC240 - once, before any load
                        async for _signal in signals:
                            runner.stop()
                            break
                    # runner.run has returned: every task in flight was reported.
                    outer.cancel_scope.cancel()
        finally:
            await client.aclose()

    trio.run(serve)
    if done_lines:
        with done_path.open("a") as out:
            out.write("".join(done_lines))
    if slots["in_flight"] >= concurrency:
        slots["full_s"] += time.monotonic() - slots["full_since"]
    stats.update(
        queued_ms=queued_ms, slots_full_s=round(slots["full_s"], 3), max_in_flight=slots["max"]
    )


def run_sdk(url: str, concurrency: int, worker_id: str, ready: Path) -> None:
    # The SDK's own loop: `thread_count` tasks at once, fetched with batch polls.
    import threading

    from conductor.client.automator.task_runner import TaskRunner as SdkRunner
    from conductor.client.configuration.configuration import Configuration
    from conductor.client.http.models.task import Task as SdkTask
    from conductor.client.worker.worker import Worker

    def load_task(task: SdkTask) -> dict[str, Any]:
        _record(task.scheduled_time)
        return {"ok": True, "n": 1}

    load_task.__annotations__["task"] = SdkTask
    w = Worker(LOAD_TASK, load_task, poll_interval=1, worker_id=worker_id)
    w.thread_count = concurrency
    runner = SdkRunner(w, Configuration(server_api_url=url))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=runner.run, daemon=True).start()
    time.sleep(0.5)
    ready.touch()
    stop.wait()
    time.sleep(0.5)  # let updates in flight finish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("url", help="the server's /api URL")
    parser.add_argument("stats", type=Path, help="where to write the latencies on exit")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sdk", action="store_true", help="use conductor-python's workers")
    parser.add_argument("--worker-id", default="load")
    parser.add_argument("--final-ref", help="report completions of this last task (see rules)")
    args = parser.parse_args(argv)
    ready = args.stats.with_suffix(".ready")
    try:
        if args.sdk:
            run_sdk(args.url, args.concurrency, args.worker_id, ready)
        else:
            run_podium(args.url, args.concurrency, args.worker_id, ready, args.final_ref)
    finally:
        args.stats.write_text(json.dumps({**stats, "dispatch_ms": dispatch_ms}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
