"""The whole server over HTTP: start -> batch poll -> update-v2 for N two-task workflows.

Run: `.venv/bin/python -m bench.api [memory|sqlite] [N] [K]`.
Starts `podium server` as a subprocess on a free loopback port (as users run it), then
K threads with keep-alive httpx clients start N workflows (`POST /api/workflow/{name}`,
text/plain id), and K worker threads batch-poll (count 10, timeout 100 ms) and report
each task with `POST /api/tasks/update-v2`, running the task it hands back at once,
exactly like the official SDK's TaskRunner. Prints start latency p50/p99, workflows/s
end to end, HTTP requests/s, and the server's CPU time per workflow (utime+stime from
/proc, from the first start to the last completion): the figure to compare, since the
machine is shared and the client threads compete with the server.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.load_server import ServerProcess, cpu_seconds, start_server


def _cpu(server: ServerProcess) -> float:
    seconds = cpu_seconds(server.process.pid)
    if seconds is None:
        raise RuntimeError("server CPU needs /proc (Linux)")
    return seconds


DEFINITION = {
    "name": "bench_api",
    "tasks": [
        {
            "name": "bench_t1",
            "taskReferenceName": "t1",
            "inputParameters": {"x": "${workflow.input.x}"},
        },
        {"name": "bench_t2", "taskReferenceName": "t2", "inputParameters": {"y": "${t1.output.y}"}},
    ],
}


def _starter(base: str, count: int, latencies: list[float]) -> None:
    with httpx.Client(base_url=base, headers={"Accept": "text/plain"}) as client:
        for i in range(count):
            began = time.perf_counter()
            resp = client.post("/api/workflow/bench_api", json={"x": i})
            resp.raise_for_status()
            latencies.append(time.perf_counter() - began)


def _worker(base: str, stop: threading.Event, counts: list[int]) -> None:
    requests = 0
    with httpx.Client(base_url=base) as client:
        while not stop.is_set():
            for task_type in ("bench_t1", "bench_t2"):
                resp = client.get(
                    f"/api/tasks/poll/batch/{task_type}",
                    params={"workerid": "bench", "count": 10, "timeout": 100},
                )
                requests += 1
                for task in resp.json():
                    while task:
                        result = {
                            "taskId": task["taskId"],
                            "workflowInstanceId": task["workflowInstanceId"],
                            "workerId": "bench",
                            "status": "COMPLETED",
                            "outputData": {"y": 1},
                        }
                        answer = client.post("/api/tasks/update-v2", json=result)
                        requests += 1
                        task = answer.json() if answer.status_code == 200 else None
    counts.append(requests)


def main(kind: str = "sqlite", n: int = 1000, k: int = 4) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench_api_"))
    store = "memory://" if kind == "memory" else f"sqlite:///{folder / 'bench.db'}"
    server = start_server(store, folder)
    base = server.base_url
    try:
        httpx.put(f"{base}/api/metadata/workflow", json=[DEFINITION]).raise_for_status()
        latencies: list[float] = []
        counts: list[int] = []
        stop = threading.Event()
        workers = [threading.Thread(target=_worker, args=(base, stop, counts)) for _ in range(k)]
        starters = [
            threading.Thread(target=_starter, args=(base, n // k, latencies)) for _ in range(k)
        ]
        began, cpu_began = time.perf_counter(), _cpu(server)
        for thread in workers + starters:
            thread.start()
        for thread in starters:
            thread.join()
        started = time.perf_counter() - began
        total = len(latencies)
        query: dict[str, str | int] = {
            "query": "workflowType = 'bench_api' AND status = 'COMPLETED'",
            "size": 0,
        }
        while httpx.get(f"{base}/api/workflow/search", params=query).json()["totalHits"] < total:
            time.sleep(0.01)
        elapsed, cpu = time.perf_counter() - began, _cpu(server) - cpu_began
        stop.set()
        for thread in workers:
            thread.join()
        latencies.sort()
        print(f"store={kind} workflows={total} threads={k}")
        print(
            f"starts: {total / started:.0f}/s  p50 {statistics.median(latencies) * 1000:.1f} ms"
            f"  p99 {latencies[int(total * 0.99) - 1] * 1000:.1f} ms"
        )
        requests = total + sum(counts)
        rate = requests / elapsed
        print(f"end to end: {total / elapsed:.0f} workflows/s, {rate:.0f} HTTP requests/s")
        # Includes the completion check above (a search every 10 ms), as the rate does.
        print(f"server CPU: {cpu / total * 1e3:.2f} ms per workflow")
    finally:
        server.stop()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        args[0] if args else "sqlite",
        int(args[1]) if len(args) > 1 else 1000,
        int(args[2]) if len(args) > 2 else 4,
    )
