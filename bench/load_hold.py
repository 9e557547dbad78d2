"""`podium load --hold N`: memory per held workflow, then release them all.

Rules: N workflows of the `hold` workload (one WAIT task with no duration) are started
as fast as `--starters` concurrent requests go (`--rate` is not applied); once all are
started the server's RSS and the store's memory are read again, and the differences
divided by N are reported per held workflow. Store memory: Redis `INFO memory`
used_memory (instance-wide: run it on a quiet Redis), SQLite the database file plus its
WAL, none for memory://. Then every WAIT task is completed over the API
(`POST /tasks/{workflowId}/hold/COMPLETED`, `--starters` at a time) while the watcher
(bench.load) reads the oldest unfinished ones in bulk, until all N workflows ended;
`--timeout` counts from the last completion request. Rates need concurrency: with
`--hold`, `--starters` defaults to 64 (measured ~2x the starts/s of 16: Redis commits and
reads of concurrent requests share pipelines).
- Starts and completions go through client.http.HttpPool (keep-alive sockets, ~20x less
  client CPU per request than httpx), so the generator is not what limits the rates.
- Per phase it reports the rate, and the CPU seconds per 1000 workflows of the server
  process, of the generator and (Redis only, `INFO cpu`, instance-wide) of Redis, so
  runs on the busy shared machine can be compared: `start_*` (all started),
  `release_*` (every completion request answered; the watcher runs alongside) and
  `end_*` (from the first completion request until all N were seen ended).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from bench import load_server
from bench.load import RunState, _progress_loop, _watch, register
from bench.load_workloads import hold
from client.http import HttpPool

#: `post(path, body) -> (status, body)` on the API prefix.
_Poster = Callable[[str, bytes], Awaitable[tuple[int, bytes]]]
_JSON_HEADERS = "Content-Type: application/json\r\nAccept: text/plain, application/json\r\n"


def _redis_client(store_url: str) -> Any:
    import redis

    # Podium's `prefix` query parameter is not redis-py's: drop the query.
    return redis.Redis.from_url(store_url.split("?")[0])


def store_bytes(store_url: str) -> int | None:
    """The store's memory or disk footprint in bytes, where it can be read."""
    if store_url.startswith("redis"):
        client = _redis_client(store_url)
        try:
            return int(client.info("memory")["used_memory"])
        finally:
            client.close()
    if store_url.startswith("sqlite:///"):
        path = Path(store_url.removeprefix("sqlite:///").split("?")[0])
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return None


def store_cpu_seconds(store_url: str) -> float | None:
    """Redis's user + system CPU seconds so far (instance-wide), None for other stores."""
    if not store_url.startswith("redis"):
        return None
    client = _redis_client(store_url)
    try:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        client.close()


class _Meter:
    """CPU seconds of the server, this generator and the store over one phase."""

    def __init__(self, pid: int | None, store: str) -> None:
        self._pid, self._store = pid, store
        self._at = self._read()

    def _read(self) -> tuple[float | None, float, float | None, float]:
        return (
            load_server.cpu_seconds(self._pid),
            time.process_time(),
            store_cpu_seconds(self._store),
            time.monotonic(),
        )

    def report(self, prefix: str, count: int) -> dict[str, Any]:
        now = self._read()
        seconds = max(1e-9, now[3] - self._at[3])
        out: dict[str, Any] = {f"{prefix}_per_s": round(count / seconds, 1)}
        out[f"{prefix}_seconds"] = round(seconds, 1)
        per = 1000 / max(1, count)
        for name, before, after in (
            ("server", self._at[0], now[0]),
            ("generator", self._at[1], now[1]),
            ("store", self._at[2], now[2]),
        ):
            if before is not None and after is not None:
                out[f"{prefix}_{name}_cpu_s_per_1k"] = round((after - before) * per, 3)
        return out


async def _each(
    api: str,
    items: Iterator[Any],
    connections: int,
    call: Callable[[_Poster, Any], Awaitable[None]],
) -> None:
    """`call(post, item)` for every item, `connections` requests in flight at once."""
    parts = urlsplit(api)
    prefix = parts.path.rstrip("/")
    async with HttpPool(f"{parts.scheme}://{parts.netloc}", max_connections=connections) as pool:

        async def post(path: str, body: bytes) -> tuple[int, bytes]:
            response = await pool.request(
                "POST", prefix + path, headers=_JSON_HEADERS, body=body, timeout_s=120
            )
            return response.status, response.body

        async def worker() -> None:
            for item in items:
                await call(post, item)

        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(worker)


async def _start(api: str, state: RunState, starters: int) -> None:
    workload = hold()
    path = f"/workflow/{workload.workflow_name}"
    body = json.dumps(workload.input).encode()

    async def start(post: _Poster, _n: int) -> None:
        sent = time.time() * 1000
        status, reply = await post(path, body)
        if status != 200:
            state.start_errors += 1
            state.failed += 1
            return
        workflow_id = reply.decode().strip()
        state.sent_ms[workflow_id] = sent
        state.pending[workflow_id] = None

    state.first_sent_ms = time.time() * 1000
    await _each(api, iter(range(state.total)), starters, start)


async def _release(api: str, state: RunState, starters: int) -> int:
    """Completes every held WAIT task; returns how many requests were refused."""
    refused = 0

    async def complete(post: _Poster, wid: str) -> None:
        nonlocal refused
        status, _ = await post(f"/tasks/{wid}/hold/COMPLETED", b"{}")
        if status != 200:
            refused += 1

    await _each(api, iter(list(state.sent_ms)), starters, complete)
    return refused


async def _hold(api: str, args: argparse.Namespace, pid: int | None, store: str) -> dict[str, Any]:
    state = RunState(total=args.hold)
    report: dict[str, Any] = {"workload": "hold", "workflows": args.hold}
    began = time.monotonic()
    rss0, mem0 = load_server.rss_mb(pid), store_bytes(store)
    meter = _Meter(pid, store)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_progress_loop, state, "hold: starting", not args.no_progress)
        await _start(api, state, args.starters)
        nursery.cancel_scope.cancel()
    report.update(meter.report("start", len(state.sent_ms)))
    rss1, mem1 = load_server.rss_mb(pid), store_bytes(store)
    if rss0 is not None and rss1 is not None:
        report["server_rss_mb"] = round(rss1, 1)
        report["server_rss_kb_per_held"] = round((rss1 - rss0) * 1024 / args.hold, 3)
    if mem0 is not None and mem1 is not None:
        report["store_mb"] = round(mem1 / 2**20, 1)
        report["store_bytes_per_held"] = round((mem1 - mem0) / args.hold)
    meter = _Meter(pid, store)
    count = len(state.sent_ms)

    released = trio.Event()

    async def release() -> None:
        report["release_refused"] = await _release(api, state, args.starters)
        report.update(meter.report("release", count))
        released.set()
        # --timeout counts from the last completion request (releasing 1M takes longer).
        await trio.sleep(args.timeout)
        unfinished = state.total - state.completed - state.failed
        raise TimeoutError(f"{unfinished} workflows unfinished {args.timeout} s after release")

    async def watch(pool: HttpPool, scope: trio.CancelScope) -> None:
        target = f"{urlsplit(api).path.rstrip('/')}/workflow/bulk/search?includeTasks=false"
        await _watch(pool, target, state, math.inf)
        await released.wait()
        scope.cancel()

    parts = urlsplit(api)
    async with (
        HttpPool(f"{parts.scheme}://{parts.netloc}", max_connections=4) as watch_pool,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_progress_loop, state, "hold: releasing", not args.no_progress)
        async with trio.open_nursery() as inner:
            inner.start_soon(release)
            inner.start_soon(watch, watch_pool, inner.cancel_scope)
        nursery.cancel_scope.cancel()
    report.update(meter.report("end", count))
    report["completed"] = state.completed
    report["failed"] = state.failed + (args.hold - len(state.sent_ms) - state.start_errors)
    report["seconds"] = round(time.monotonic() - began, 1)
    return report


def run_hold(args: argparse.Namespace, api: str, pid: int | None, store: str) -> dict[str, Any]:
    """Registers the hold workload and runs `_hold` (see the module rules)."""
    register(api, hold())
    return trio.run(_hold, api, args, pid, store)
