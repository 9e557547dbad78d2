"""Engine throughput without HTTP: start -> poll -> update for N two-task workflows.

Run: `PYTHONPATH=. .venv/bin/python -m bench.engine_loop [memory|sqlite|<store URL>] [N]`.
Prints workflows/s and decides/s (each workflow = 1 start + 2 polls + 2 updates = 5
decides and 5 commits). One trio task, one process: it measures the engine's own
overhead per step (decode, decide, encode, commit), not concurrency.
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


async def run(store: Store, n: int) -> None:
    await store.open()
    engine = Engine(store)
    definition = codec.convert(
        {
            "name": "bench",
            "tasks": [
                {
                    "name": "t1",
                    "taskReferenceName": "t1",
                    "inputParameters": {"x": "${workflow.input.x}"},
                },
                {
                    "name": "t2",
                    "taskReferenceName": "t2",
                    "inputParameters": {"y": "${t1.output.y}"},
                },
            ],
        },
        WorkflowDef,
    )
    await store.put_workflow_def("bench", 1, codec.encode(definition))
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        began = time.perf_counter()
        for i in range(n):
            await engine.start_workflow(StartWorkflowRequest(name="bench", input={"x": i}))
        for task_type in ("t1", "t2"):
            done = 0
            while done < n:
                tasks = await engine.poll(task_type, worker_id="bench", count=50)
                for task in tasks:
                    await engine.update_task(
                        TaskResult(
                            workflow_instance_id=task.workflow_instance_id,
                            task_id=task.task_id,
                            status=TaskResultStatus.COMPLETED,
                            output_data={"y": 1},
                        )
                    )
                done += len(tasks)
        elapsed = time.perf_counter() - began
        nursery.cancel_scope.cancel()
    await store.close()
    print(
        f"{store.url.split(':')[0]}: {n} workflows in {elapsed:.2f} s = "
        f"{n / elapsed:,.0f} workflows/s, {5 * n / elapsed:,.0f} decides+commits/s"
    )


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "memory"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    elif kind == "memory":
        url = "memory://"
    else:
        # Any store URL; point it at a throwaway prefix/schema (workflows are left there),
        # e.g. redis://127.0.0.1:6379/9?prefix=bench or postgresql://...?schema=bench.
        url = kind
    trio.run(run, open_store(url), n)


if __name__ == "__main__":
    main()
