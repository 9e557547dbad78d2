"""`podium load --hold N`: memory per held workflow, then release them all.

Rules: N workflows of the `hold` workload (one WAIT task with no duration) are started
as fast as `--starters` requests go; once all are started the server's RSS and the
store's memory are read again, and the differences divided by N are reported per held
workflow. Store memory: Redis `INFO memory` used_memory (instance-wide: run it on a
quiet Redis), SQLite the database file plus its WAL, none for memory://. Then every
WAIT task is completed over the API and the harness waits until all N workflows ended.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from bench import load_server
from bench.load import RunState, _progress_loop, _start_all, _watch, register
from bench.load_workloads import hold


def store_bytes(store_url: str) -> int | None:
    """The store's memory or disk footprint in bytes, where it can be read."""
    if store_url.startswith("redis"):
        import redis

        # Podium's `prefix` query parameter is not redis-py's: drop the query.
        client = redis.Redis.from_url(store_url.split("?")[0])
        try:
            return int(client.info("memory")["used_memory"])
        finally:
            client.close()
    if store_url.startswith("sqlite:///"):
        path = Path(store_url.removeprefix("sqlite:///").split("?")[0])
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return None


async def _release(http: httpx.AsyncClient, state: RunState, starters: int) -> None:
    ids = iter(list(state.sent_ms))

    async def completer() -> None:
        for wid in ids:
            response = await http.post(f"/tasks/{wid}/hold/COMPLETED", json={})
            response.raise_for_status()

    async with trio.open_nursery() as nursery:
        for _ in range(starters):
            nursery.start_soon(completer)


async def _hold(api: str, args: argparse.Namespace, pid: int | None, store: str) -> dict[str, Any]:
    workload = hold()
    state = RunState(total=args.hold)
    limits = httpx.Limits(max_connections=args.starters + 2)
    report: dict[str, Any] = {"workload": "hold", "workflows": args.hold}
    async with httpx.AsyncClient(base_url=api, timeout=120, limits=limits) as http:
        rss0, mem0 = load_server.rss_mb(pid), store_bytes(store)
        started = time.monotonic()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_progress_loop, state, "hold: starting", not args.no_progress)
            await _start_all(http, workload, state, args.rate, args.starters)
            nursery.cancel_scope.cancel()
        report["start_per_s"] = round(len(state.sent_ms) / (time.monotonic() - started), 1)
        rss1, mem1 = load_server.rss_mb(pid), store_bytes(store)
        if rss0 is not None and rss1 is not None:
            report["server_rss_mb"] = round(rss1, 1)
            report["server_rss_kb_per_held"] = round((rss1 - rss0) * 1024 / args.hold, 3)
        if mem0 is not None and mem1 is not None:
            report["store_mb"] = round(mem1 / 2**20, 1)
            report["store_bytes_per_held"] = round((mem1 - mem0) / args.hold)
        await _release(http, state, args.starters)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_progress_loop, state, "hold: releasing", not args.no_progress)
            await _watch(http, state, time.monotonic() + args.timeout)
            nursery.cancel_scope.cancel()
    report["completed"] = state.completed
    report["failed"] = state.failed + (args.hold - len(state.sent_ms) - state.start_errors)
    return report


def run_hold(args: argparse.Namespace, api: str, pid: int | None, store: str) -> dict[str, Any]:
    """Registers the hold workload and runs `_hold` (see the module rules)."""
    register(api, hold())
    return trio.run(_hold, api, args, pid, store)
