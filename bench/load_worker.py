"""A load-harness worker process: serves the load task type until SIGTERM.

Run by bench/load.py as `python -m bench.load_worker URL STATS_FILE [--sdk] ...`.

Rules: the worker does no work beyond recording, for each task it receives, the
dispatch latency `now - task.scheduledTime` (ms, same machine so one clock), and
answering `{"ok": true}`. With Podium's client (default) it runs client.TaskRunner
(trio, batch long-poll, an async worker function: no thread per task). With `--sdk`
it runs conductor-python's TaskHandler. On SIGTERM it drains, then writes
`{"dispatch_ms": [...], "tasks": n}` to STATS_FILE. STATS_FILE with suffix `.ready`
is created once the worker polls.
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


def _record(scheduled_ms: int | None) -> None:
    if scheduled_ms:
        dispatch_ms.append(time.time() * 1000 - scheduled_ms)


def run_podium(url: str, concurrency: int, worker_id: str, ready: Path) -> None:
    import trio

    from client import TaskRunner, worker
    from core.models.execution import Task

    @worker(LOAD_TASK, poll_count=concurrency)
    async def load_task(task: Task) -> dict[str, Any]:
        _record(task.scheduled_time)
        return {"ok": True, "n": 1}

    runner = TaskRunner([load_task], url, worker_id=worker_id)

    async def serve() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(runner.run)
                ready.touch()  # noqa: ASYNC240 - once, before any load
                async for _signal in signals:
                    runner.stop()
                    break

    trio.run(serve)


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
    args = parser.parse_args(argv)
    ready = args.stats.with_suffix(".ready")
    try:
        if args.sdk:
            run_sdk(args.url, args.concurrency, args.worker_id, ready)
        else:
            run_podium(args.url, args.concurrency, args.worker_id, ready)
    finally:
        args.stats.write_text(json.dumps({"dispatch_ms": dispatch_ms, "tasks": len(dispatch_ms)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
