"""A worker process for the signal test: `python -m tests.client.signal_worker URL TYPE`.

It runs `TaskRunner.run_sync()` with one worker (one task at a time, so no poll is on
the wire while it works) that prints `started <n>`, then takes a second before it
completes; the test sends SIGTERM in between.
"""

from __future__ import annotations

import sys
import time

from client import Backoff, TaskRunner, worker


def main(url: str, task_type: str) -> None:
    @worker(task_type)
    def slow_step(n: int) -> dict[str, int]:
        print("started", n, flush=True)
        time.sleep(1.0)
        return {"n": n, "finished": 1}

    runner = TaskRunner(
        [slow_step],
        url,
        concurrency=1,
        poll_timeout_ms=1000,
        backoff=Backoff(initial_s=0.05, max_s=0.5),
    )
    runner.run_sync()
    print("stopped", runner.stats.completed, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
