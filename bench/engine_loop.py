"""Engine throughput without HTTP: start -> poll -> update for N two-task workflows.

Run: `PYTHONPATH=. .venv/bin/python -m bench.engine_loop [memory|sqlite|<URL>] [N] [K]`.
K trio tasks start workflows and K more act as workers (poll up to 10, update each);
K=1 measures the engine's own per-step cost (decode, decide, encode, commit), larger K
shows what concurrency (group commit, pipelined round trips) buys on a networked store.
Prints workflows/s and decides+commits/s (each workflow = 1 start + 2 polled tasks +
2 updates = 5 commits). For Redis/PostgreSQL pass a throwaway prefix or schema
(workflows are left there), e.g. `redis://127.0.0.1:6379/9?prefix=bench` or
`postgresql://postgres@127.0.0.1:5432/test?schema=bench_engine`.
"""

from __future__ import annotations

import sys
import tempfile
import time

import trio

from core import codec
from core.enums import TaskResultStatus
from core.models import StartWorkflowRequest, TaskResult, WorkflowDef
from core.store import Store
from server.engine import Engine
from server.stores import open_store

DEFINITION = {
    "name": "bench",
    "tasks": [
        {"name": "t1", "taskReferenceName": "t1", "inputParameters": {"x": "${workflow.input.x}"}},
        {"name": "t2", "taskReferenceName": "t2", "inputParameters": {"y": "${t1.output.y}"}},
    ],
}


async def run(store: Store, n: int, k: int) -> None:
    await store.open()
    engine = Engine(store)
    definition = codec.convert(DEFINITION, WorkflowDef)
    await store.put_workflow_def("bench", 1, codec.encode(definition))
    finished = {"t1": 0, "t2": 0}
    all_done = trio.Event()

    async def starter(share: int) -> None:
        for i in range(share):
            await engine.start_workflow(StartWorkflowRequest(name="bench", input={"x": i}))

    async def worker() -> None:
        while not all_done.is_set():
            for task_type in ("t2", "t1"):
                tasks = await engine.poll(task_type, worker_id="bench", count=10, timeout_ms=100)
                for task in tasks:
                    await engine.update_task(
                        TaskResult(
                            workflow_instance_id=task.workflow_instance_id,
                            task_id=task.task_id,
                            status=TaskResultStatus.COMPLETED,
                            output_data={"y": 1},
                        )
                    )
                finished[task_type] += len(tasks)
            if finished["t2"] >= n:
                all_done.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        began = time.perf_counter()
        async with trio.open_nursery() as load:
            for j in range(k):
                load.start_soon(starter, n // k + (1 if j < n % k else 0))
                load.start_soon(worker)
        elapsed = time.perf_counter() - began
        nursery.cancel_scope.cancel()
    await store.close()
    print(
        f"{store.url.split(':')[0]} K={k}: {n} workflows in {elapsed:.2f} s = "
        f"{n / elapsed:,.0f} workflows/s, {5 * n / elapsed:,.0f} decides+commits/s"
    )


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "memory"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    elif kind == "memory":
        url = "memory://"
    else:
        url = kind
    trio.run(run, open_store(url), n, k)


if __name__ == "__main__":
    main()
