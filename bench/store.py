"""Store backend benchmark: `python -m bench.store [--json] [--backends memory,sqlite]`.

Rules:
- Measures what the engine does to a store, per backend in BACKENDS:
  * commit_create_us: one round trip of `commit()` creating a workflow (2 KiB body, one
    task id, a task-queue push and a decider-queue push), callers in sequence;
  * pop_commit_us: a worker poll then the completion commit: `pop(queue, 1)` plus the
    `commit()` that acks the task, schedules the next one and bumps the version;
  * concurrent_commits_per_s: 32 trio tasks, each driving its own workflow through
    transitions (commit with expected version, task-queue push and ack), all at once;
    PostgreSQL also reports how many commits its group committer put in each transaction.
- redis and postgres use PODIUM_BENCH_REDIS_URL / PODIUM_BENCH_POSTGRES_DSN (defaults:
  the local test services) under a private prefix / schema removed afterwards. When one
  of them runs, `bridge` reports a no-op coroutine awaited directly vs through the
  asyncio sidecar (server.stores.bridge), sequential (wall and process CPU time) and from
  32 concurrent trio tasks.
  `pg-1tx` is PostgreSQL with group commit off (one transaction per commit, up to 32 at
  once): the baseline the grouped `postgres` row is compared with.
- Adding a backend is one BACKENDS entry: an async context manager factory taking a
  scratch directory and yielding an opened, empty Store. A factory may raise
  `BackendUnavailable(reason)`; the backend is then reported as skipped.
- Each figure is the median of `--repeat` samples (default 3), each on a fresh store.
  Next to each wall-clock figure, `*_cpu_us` is the process CPU time (every thread: trio,
  the store's own threads, the asyncio sidecar) per operation, from time.process_time():
  steadier than wall time on a shared machine, and what a store change should lower.
  For a remote backend it omits the server's (Redis', PostgreSQL's) own CPU.
- Output: a table on stdout; with --json, one JSON object as the last line:
  {"memory": {...}, "sqlite": {...}}. Figures depend on the machine (2 shared cores here),
  so compare rows within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse

import trio

from core.store import DECIDER_QUEUE, Commit, QueueOp, Store, WorkflowRecord
from server.stores import open_store
from server.stores.bridge import AsyncioBridge

T0 = 1_700_000_000_000
BODY = (
    b'{"tasks":['
    + b",".join(b'{"taskId":"%05d","status":"COMPLETED"}' % i for i in range(48))
    + b"]}"
)


class BackendUnavailable(Exception):
    """Raised by a factory whose service is not reachable: the backend is skipped."""


@asynccontextmanager
async def _opened(url: str) -> AsyncIterator[Store]:
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _memory(scratch: Path) -> AbstractAsyncContextManager[Store]:
    return _opened("memory://")


def _sqlite(scratch: Path) -> AbstractAsyncContextManager[Store]:
    return _opened(f"sqlite:///{scratch / 'bench.db'}")


REDIS_URL = os.environ.get("PODIUM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get(
    "PODIUM_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def _reachable(url: str, default_port: int) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as exc:
        raise BackendUnavailable(f"{host}:{port} is not reachable ({exc})") from exc


@asynccontextmanager
async def _redis(scratch: Path) -> AsyncIterator[Store]:
    # A private key prefix, deleted afterwards: the database may be shared.
    from tests.server.remote_stores import drop_redis_prefix, with_query

    _reachable(REDIS_URL, 6379)
    prefix = f"podium-bench-{uuid.uuid4().hex[:12]}"
    try:
        async with _opened(with_query(REDIS_URL, prefix=prefix)) as store:
            yield store
    finally:
        await drop_redis_prefix(REDIS_URL, prefix)


@asynccontextmanager
async def _postgres_with(**params: str) -> AsyncIterator[Store]:
    # A private schema, dropped afterwards.
    from tests.server.remote_stores import drop_postgres_schema, with_query

    _reachable(POSTGRES_DSN, 5432)
    schema = f"podium_bench_{uuid.uuid4().hex[:12]}"
    try:
        async with _opened(with_query(POSTGRES_DSN, schema=schema, **params)) as store:
            yield store
    finally:
        await drop_postgres_schema(POSTGRES_DSN, schema)


def _postgres(scratch: Path) -> AbstractAsyncContextManager[Store]:
    return _postgres_with()


def _postgres_one_tx(scratch: Path) -> AbstractAsyncContextManager[Store]:
    # Group commit off: one transaction per commit (32 at once on 32 connections), the
    # baseline group commit must beat.
    return _postgres_with(commit_batch="1", commit_in_flight="32", pool_size="32")


BACKENDS: dict[str, Callable[[Path], AbstractAsyncContextManager[Store]]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "redis": _redis,
    "postgres": _postgres,
    "pg-1tx": _postgres_one_tx,
}
# Backends reached through the asyncio sidecar (server.stores.bridge).
BRIDGED = frozenset({"redis", "postgres", "pg-1tx"})


def _record(wf_id: str, step: int) -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=wf_id,
        workflow_name="bench",
        workflow_version=1,
        status="RUNNING",
        create_time=T0,
        update_time=T0 + step,
        correlation_id=f"corr-{wf_id}",
        search_text='{"input":{"orderId":42}}',
        body=BODY,
    )


def _create(wf_id: str, queue: str) -> Commit:
    task = f"{wf_id}-t0"
    return Commit(
        record=_record(wf_id, 0),
        expected_version=0,
        added_task_ids=[task],
        queue_ops=[
            QueueOp(kind="push", queue=queue, message_id=task),
            QueueOp(kind="push", queue=DECIDER_QUEUE, message_id=wf_id, delay_ms=30_000),
        ],
    )


def _advance(wf_id: str, step: int, version: int, queue: str) -> Commit:
    """Complete task `step` of `wf_id` and schedule task `step + 1`."""
    done, nxt = f"{wf_id}-t{step}", f"{wf_id}-t{step + 1}"
    return Commit(
        record=_record(wf_id, step + 1),
        expected_version=version,
        added_task_ids=[nxt],
        queue_ops=[
            QueueOp(kind="ack", queue=queue, message_id=done),
            QueueOp(kind="push", queue=queue, message_id=nxt),
            QueueOp(kind="push", queue=DECIDER_QUEUE, message_id=wf_id, delay_ms=30_000),
        ],
    )


async def bench_commit_create(store: Store, n: int) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        await store.commit(_create(f"c{i}", "q_create"), T0)
    return (time.perf_counter() - start) / n * 1e6, (time.process_time() - cpu) / n * 1e6


async def bench_pop_commit(store: Store, n: int) -> tuple[float, float]:
    for i in range(n):
        await store.commit(_create(f"p{i}", "q_poll"), T0)
    versions = dict.fromkeys((f"p{i}" for i in range(n)), 1)
    start, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < n:
        popped = await store.pop("q_poll", 1, unack_ms=60_000, now_ms=T0)
        if not popped:
            break
        wf_id, _, task = popped[0].rpartition("-t")
        versions[wf_id] = await store.commit(
            _advance(wf_id, int(task), versions[wf_id], "q_poll"), T0
        )
        done += 1
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    if done < n:
        raise RuntimeError(f"pop_commit: the queue ran dry after {done} of {n} messages")
    return elapsed / n * 1e6, used / n * 1e6


async def bench_concurrent(store: Store, tasks: int, steps: int) -> tuple[float, float]:
    async def drive(k: int) -> None:
        wf_id = f"k{k}"
        version = await store.commit(_create(wf_id, "q_concurrent"), T0)
        for step in range(steps):
            version = await store.commit(_advance(wf_id, step, version, "q_concurrent"), T0)

    start, cpu = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        for k in range(tasks):
            nursery.start_soon(drive, k)
    commits = tasks * (steps + 1)
    return commits / (time.perf_counter() - start), (time.process_time() - cpu) / commits * 1e6


Sample = tuple[float, float, float, float, float, float, float]


async def run_once(name: str, n: int, tasks: int) -> Sample:
    """One sample of the figures on a fresh, empty store (wall and CPU side by side)."""
    steps = max(1, math.ceil(n / tasks))
    with tempfile.TemporaryDirectory(prefix=f"podium-bench-{name}-") as scratch:
        async with BACKENDS[name](Path(scratch)) as store:
            create_us, create_cpu = await bench_commit_create(store, n)
            pop_us, pop_cpu = await bench_pop_commit(store, n)
            before = _group_commit_stats(store)
            per_s, concurrent_cpu = await bench_concurrent(store, tasks, steps)
            per_tx = _commits_per_transaction(before, _group_commit_stats(store))
    return create_us, pop_us, per_s, per_tx, create_cpu, pop_cpu, concurrent_cpu


async def run_backend(name: str, n: int, tasks: int, repeat: int) -> dict[str, object]:
    """Median of `repeat` samples (the machine is shared: single samples are noisy)."""
    try:
        samples = [await run_once(name, n, tasks) for _ in range(repeat)]
    except BackendUnavailable as exc:
        return {"skipped": str(exc)}
    create_us, pop_us, per_s, per_tx, create_cpu, pop_cpu, concurrent_cpu = (
        statistics.median(column) for column in zip(*samples, strict=True)
    )
    extra = {} if per_tx == 0 else {"concurrent_commits_per_transaction": round(per_tx, 1)}
    return {
        "commit_create_us": round(create_us, 1),
        "commit_create_cpu_us": round(create_cpu, 1),
        "pop_commit_us": round(pop_us, 1),
        "pop_commit_cpu_us": round(pop_cpu, 1),
        "concurrent_commits_per_s": round(per_s),
        "concurrent_cpu_us_per_commit": round(concurrent_cpu, 1),
        "concurrent_tasks": tasks,
        "n": n,
        "repeat": repeat,
        **extra,
    }


def _group_commit_stats(store: Store) -> tuple[int, int] | None:
    """(transactions, commits) so far from PostgreSQL's group committer, if the store has one."""
    stats = getattr(getattr(store, "committer", None), "stats", None)
    return None if stats is None else (stats.transactions, stats.commits)


def _commits_per_transaction(
    before: tuple[int, int] | None, after: tuple[int, int] | None
) -> float:
    """How many commits shared each transaction during the concurrent phase (0 = n/a)."""
    if before is None or after is None or after[0] == before[0]:
        return 0.0
    return (after[1] - before[1]) / (after[0] - before[0])


async def bench_bridge(n: int, tasks: int) -> dict[str, float]:
    """A no-op coroutine awaited directly vs through the sidecar bridge."""

    async def noop() -> None:
        return None

    start = time.perf_counter()
    for _ in range(n):
        await trio.lowlevel.checkpoint()
    direct_us = (time.perf_counter() - start) / n * 1e6

    bridge = AsyncioBridge.acquire()
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(n):
            await bridge.run(noop)
        bridged_us = (time.perf_counter() - start) / n * 1e6
        # CPU of both threads: steadier than wall time on a busy machine.
        bridged_cpu_us = (time.process_time() - cpu_start) / n * 1e6

        async def caller() -> None:
            for _ in range(n // tasks):
                await bridge.run(lambda: asyncio.sleep(0))

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(caller)
        concurrent_per_s = (n // tasks) * tasks / (time.perf_counter() - start)
    finally:
        bridge.release()
    return {
        "noop_direct_us": round(direct_us, 2),
        "noop_bridge_us": round(bridged_us, 1),
        "bridge_overhead_us": round(bridged_us - direct_us, 1),
        "noop_bridge_cpu_us": round(bridged_cpu_us, 1),
        "noop_bridge_concurrent_per_s": round(concurrent_per_s),
    }


def _table(results: dict[str, dict[str, object]]) -> str:
    header = (
        f"{'backend':<10} {'commit create µs (CPU)':>23} {'pop+commit µs (CPU)':>20} "
        f"{'commits/s concurrent (CPU µs)':>30}"
    )
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        if "skipped" in r:
            lines.append(f"{name:<10} skipped: {r['skipped']}")
            continue
        create = f"{r['commit_create_us']} ({r['commit_create_cpu_us']})"
        pop = f"{r['pop_commit_us']} ({r['pop_commit_cpu_us']})"
        concurrent = f"{r['concurrent_commits_per_s']} ({r['concurrent_cpu_us_per_commit']})"
        lines.append(f"{name:<10} {create:>23} {pop:>20} {concurrent:>30}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma list (default: all registered)"
    )
    parser.add_argument("-n", type=int, default=2000, help="operations per measurement")
    parser.add_argument("--tasks", type=int, default=32, help="concurrent trio tasks")
    parser.add_argument("--repeat", type=int, default=3, help="samples; the median is shown")
    args = parser.parse_args(argv)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}: choose from {', '.join(BACKENDS)}")
    results: dict[str, dict[str, object]] = {
        name: trio.run(run_backend, name, args.n, args.tasks, max(1, args.repeat)) for name in names
    }
    print(_table(results))
    if BRIDGED & set(names):
        samples = [
            trio.run(bench_bridge, max(args.n, 5000), args.tasks)
            for _ in range(max(1, args.repeat))
        ]
        bridge: dict[str, object] = {
            k: round(statistics.median(x[k] for x in samples), 2) for k in samples[0]
        }
        bridge["concurrent_tasks"] = args.tasks
        print(
            f"\nasyncio bridge: no-op awaited directly {bridge['noop_direct_us']} µs, "
            f"through the bridge {bridge['noop_bridge_us']} µs "
            f"({bridge['noop_bridge_concurrent_per_s']}/s with {args.tasks} trio tasks)"
        )
        results["bridge"] = bridge
    if args.json:
        print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
