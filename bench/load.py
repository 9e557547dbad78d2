"""Load harness: `python -m bench.load` (or `podium load`) drives a server end to end.

Rules:
- Without `--server` it starts its own `podium server` on a free port (SQLite in a
  temporary folder, or `--store URL`) and stops it at the end; with `--server URL` it
  targets a running one (pass `--server-pid` to get its CPU and RSS).
- It registers the workload (bench/load_workloads.py), starts K worker processes
  (bench/load_worker.py: Podium's client, or conductor-python's with `--sdk`) and waits
  until each polls, then starts W workflows at `--rate` per second (0 = as fast as
  `--starters` concurrent requests go) and waits for them to finish.
- Completion, without asking the server while measuring: when the workload's last task
  is a SIMPLE task whose update ends the workflow (`Workload.final_ref`) and the workers
  are Podium's, each worker appends `workflow_id ms` when that task's update-v2 answer
  came back (the workflow ended in that update's commit), and the harness follows those
  files. That instant is at or after the server's endTime (the answer leaves after the
  commit), so latencies are never flattered. A slow check asks the server only about
  workflows unfinished 5 s after their start (the ones that may have failed). After the
  measured span, every workflow is fetched once (bulk, no tasks): any that is not
  COMPLETED counts as failed, and `completion.lag_ms` reports worker completion minus
  server endTime (a negative minimum would mean the worker figure is wrong). Otherwise
  (fork-10, `--sdk`, `--compare-sdk`: one method for both clients) it watches through
  bulk fetches of the oldest unfinished ids (no tasks) and uses endTime.
- Figures: start-to-complete latency = completion (above) minus when the harness sent
  the start (same machine, one clock); workflows/s and tasks/s = runs completed over
  first start sent .. last completion; dispatch latency = worker receipt minus the
  task's scheduledTime, for every task (`dispatch_ms`) and for tasks that went through
  the server's queue (`dispatch_queued_ms`: a workflow's first task, taken by a poll or
  by an update-v2 that had nothing to hand off; the others are handed back by
  update-v2 without queueing). `slots_full_s` is how long (summed over
  workers) every slot of a worker was busy: a task queued then waits for a slot, not for
  the server, so `--concurrency` (default 64 per worker, async worker functions) is
  large enough that this stays 0 at the rates measured. Server CPU (% of one core over
  the run) and RSS from /proc. CPU seconds per completed workflow, split by process
  (server, all worker processes, this generator), are taken over the same span (from
  /proc, and `time.process_time` here), so a report says where the time went
  (milliseconds per workflow; per worker task and per start too). `--hold N` instead
  starts N workflows that wait on a WAIT task, reports server RSS and store memory per
  held workflow, then completes them all.
- The generator starts workflows through Podium's own client (`ConductorClient`) and
  watches through `client.http.HttpPool`, the same transport the workers use.
- `--compare-sdk` runs Podium's client, the SDK's, then Podium's again on one server.
- A progress line goes to stderr; `--json` prints one JSON object as the last stdout line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio

from bench import load_server
from bench.load_workloads import WORKLOADS, Workload, task_defs
from client.api import ConductorApiError, ConductorClient
from client.http import HttpPool
from server.cli_load import add_args

REPO = Path(__file__).resolve().parent.parent
TERMINAL = {"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"}
WATCH_BATCH = 1000


@dataclass
class RunState:
    """What the generator and the watcher share."""

    total: int
    sent_ms: dict[str, float] = field(default_factory=dict)
    pending: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    latencies_ms: list[float] = field(default_factory=list)
    end_ms: float = 0.0
    completed: int = 0
    failed: int = 0
    start_errors: int = 0
    first_sent_ms: float = 0.0
    # Worker-reported completions (see the module rules), by workflow id.
    done_ms: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of `values`, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 2)


def _progress(state: RunState, started: float, label: str, final: bool = False) -> None:
    done = state.completed + state.failed
    width = 30
    filled = int(width * done / state.total) if state.total else width
    rate = done / max(1e-9, time.monotonic() - started)
    line = (
        f"\r{label} [{'#' * filled}{'.' * (width - filled)}] started {len(state.sent_ms)}"
        f"/{state.total} done {done} ({rate:,.0f}/s)"
    )
    sys.stderr.write(line + ("\n" if final or not sys.stderr.isatty() else ""))
    sys.stderr.flush()


# --------------------------------------------------------------------------- setup


def register(api: str, workload: Workload) -> None:
    """Registers the load task type and the workload's workflow definitions."""
    with httpx.Client(timeout=30) as http:
        http.post(f"{api}/metadata/taskdefs", json=task_defs()).raise_for_status()
        defs = [*workload.helpers, workload.workflow]
        http.put(f"{api}/metadata/workflow", json=defs).raise_for_status()


def start_workers(
    api: str, folder: Path, count: int, concurrency: int, sdk: bool, final_ref: str | None = None
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """K worker processes; returns once each has created its ready file."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    workers = []
    for i in range(count):
        stats = folder / f"worker-{i}.json"
        stats.unlink(missing_ok=True)  # a previous run's files (--compare-sdk)
        stats.with_suffix(".ready").unlink(missing_ok=True)
        stats.with_suffix(".done").unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "bench.load_worker", api, str(stats)]
        cmd += ["--concurrency", str(concurrency), "--worker-id", f"load-{i}"]
        if sdk:
            cmd.append("--sdk")
        if final_ref is not None:
            cmd += ["--final-ref", final_ref]
        log = (folder / f"worker-{i}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        workers.append((proc, stats))
    deadline = time.monotonic() + 60
    for proc, stats in workers:
        while not stats.with_suffix(".ready").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log_text = stats.with_name(stats.stem + ".log").read_text(errors="replace")
                raise RuntimeError(f"a worker process did not start:\n{log_text}")
            time.sleep(0.05)
    return workers


@dataclass
class WorkerFigures:
    """What the worker processes recorded (bench/load_worker.py)."""

    dispatch_ms: list[float] = field(default_factory=list)
    queued_ms: list[float] = field(default_factory=list)
    slots_full_s: float = 0.0
    max_in_flight: int = 0


def stop_workers(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> WorkerFigures:
    """SIGTERM every worker, wait, and gather what they recorded."""
    for proc, _ in workers:
        proc.terminate()
    figures = WorkerFigures()
    for proc, stats in workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if stats.exists():
            data = json.loads(stats.read_text())
            figures.dispatch_ms.extend(data["dispatch_ms"])
            figures.queued_ms.extend(data.get("queued_ms", []))
            figures.slots_full_s += data.get("slots_full_s", 0.0)
            figures.max_in_flight = max(figures.max_in_flight, data.get("max_in_flight", 0))
    return figures


# --------------------------------------------------------------------------- the run


async def _start_all(
    client: ConductorClient, workload: Workload, state: RunState, rate: float, starters: int
) -> None:
    name, workflow_input = workload.workflow_name, workload.input
    counter = iter(range(state.total))
    begin = trio.current_time()  # trio's clock, not time.monotonic (another epoch)

    async def starter() -> None:
        for n in counter:
            if rate > 0:
                await trio.sleep_until(begin + n / rate)
            sent = time.time() * 1000
            try:
                workflow_id = await client.start_workflow_by_name(name, workflow_input)
            except ConductorApiError:
                state.start_errors += 1
                state.failed += 1
                continue
            state.sent_ms[workflow_id] = sent
            state.pending[workflow_id] = None
            if workflow_id in state.done_ms:  # its worker was quicker than this answer
                _finish(state, workflow_id, True, state.done_ms[workflow_id])

    state.first_sent_ms = time.time() * 1000
    async with trio.open_nursery() as nursery:
        for _ in range(starters):
            nursery.start_soon(starter)


_WATCH_HEADERS = "Accept: application/json\r\nContent-Type: application/json\r\n"


class _Seen(msgspec.Struct, rename="camel"):
    """The few fields the watcher reads from a workflow (the rest is skipped unparsed)."""

    workflow_id: str
    status: str
    end_time: float | None = None
    update_time: float | None = None


class _Bulk(msgspec.Struct, rename="camel"):
    bulk_successful_results: list[_Seen] = []


_bulk_answer = msgspec.json.Decoder(_Bulk)


async def _fetch(pool: HttpPool, target: str, ids: list[str]) -> list[_Seen]:
    """Status and times of workflows `ids` (one bulk fetch, no tasks)."""
    response = await pool.request(
        "POST", target, headers=_WATCH_HEADERS, body=msgspec.json.encode(ids), timeout_s=60
    )
    if response.status != 200:
        raise RuntimeError(f"bulk search answered {response.status}: {response.text[:300]}")
    return _bulk_answer.decode(response.body).bulk_successful_results


def _finish(state: RunState, workflow_id: str, completed: bool, end_ms: float) -> None:
    """Counts one pending workflow as ended at `end_ms`."""
    if state.pending.pop(workflow_id, 0) is not None:
        return  # not pending (already counted, or never started)
    state.end_ms = max(state.end_ms, end_ms)
    if completed:
        state.completed += 1
        state.latencies_ms.append(end_ms - state.sent_ms[workflow_id])
    else:
        state.failed += 1


def _settle(state: RunState, found: list[_Seen], completed_too: bool = True) -> None:
    """Counts the terminal workflows among `found` with their server endTime."""
    for wf in found:
        if wf.status not in TERMINAL:
            continue
        if wf.status == "COMPLETED" and not completed_too:
            continue
        end = float(wf.end_time or wf.update_time or time.time() * 1000)
        _finish(state, wf.workflow_id, wf.status == "COMPLETED", end)


def _check_timeout(state: RunState, deadline: float) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError(
            f"{state.total - state.completed - state.failed} workflows unfinished at timeout"
        )


async def _watch(pool: HttpPool, target: str, state: RunState, deadline: float) -> None:
    """Completion from the server: bulk fetches of the oldest unfinished workflows."""
    while state.completed + state.failed < state.total:
        _check_timeout(state, deadline)
        # While starts are still going, look at a few of the oldest (they finish first)
        # once a second so watching costs the server little (measured: at 300 fetches/s
        # it took ~12% of the server's busy time); afterwards, at everything left.
        still_starting = len(state.sent_ms) + state.start_errors < state.total
        await trio.sleep(1.0 if still_starting else 0.3)
        batch = list(itertools.islice(state.pending, 100 if still_starting else WATCH_BATCH))
        if batch:
            _settle(state, await _fetch(pool, target, batch))


# A workflow unfinished this long after its start is asked about (it may have failed).
STRAGGLER_MS = 5000.0


async def _follow(
    pool: HttpPool, target: str, state: RunState, deadline: float, files: list[Path]
) -> None:
    """Completion from the workers' `.done` files (see the module rules)."""
    readers: dict[Path, Any] = {}
    offsets = dict.fromkeys(files, "")
    last_check = time.monotonic()
    try:
        while state.completed + state.failed < state.total:
            _check_timeout(state, deadline)
            await trio.sleep(0.1)
            for path in files:
                if path not in readers:
                    if not path.exists():
                        continue
                    readers[path] = path.open()
                text = offsets[path] + readers[path].read()
                lines = text.split("\n")
                offsets[path] = lines.pop()  # a partial last line waits for its end
                for line in lines:
                    workflow_id, _, at = line.partition(" ")
                    end = float(at)
                    state.done_ms[workflow_id] = end
                    _finish(state, workflow_id, True, end)
            if time.monotonic() - last_check < STRAGGLER_MS / 1000:
                continue
            last_check = time.monotonic()
            old = time.time() * 1000 - STRAGGLER_MS
            stragglers = [w for w in itertools.islice(state.pending, 100) if state.sent_ms[w] < old]
            if stragglers:
                # Failed ones end here; completed ones are left to their worker's line.
                _settle(state, await _fetch(pool, target, stragglers), completed_too=False)
    finally:
        for reader in readers.values():
            reader.close()


async def verify(api: str, state: RunState) -> dict[str, Any]:
    """After the run: fetch every workflow once; see the module rules."""
    origin = api.removesuffix("/api")
    target = f"{api.removeprefix(origin)}/workflow/bulk/search?includeTasks=false"
    ids = list(state.done_ms)
    lags: list[float] = []
    not_completed = 0
    async with HttpPool(origin, max_connections=1) as pool:
        for i in range(0, len(ids), WATCH_BATCH):
            for wf in await _fetch(pool, target, ids[i : i + WATCH_BATCH]):
                if wf.status != "COMPLETED" or not wf.end_time:
                    not_completed += 1
                    continue
                lags.append(state.done_ms[wf.workflow_id] - wf.end_time)
    missing = len(ids) - len(lags) - not_completed
    return {
        "source": "workers",
        "checked": len(ids),
        "not_completed": not_completed + missing,
        "lag_ms": {
            "min": None if not lags else round(min(lags), 2),
            **{q: percentile(lags, n) for q, n in _QS},
        },
    }


async def _progress_loop(state: RunState, label: str, enabled: bool) -> None:
    started = time.monotonic()
    while enabled:
        _progress(state, started, label)
        await trio.sleep(0.5)


async def drive(
    api: str, workload: Workload, args: argparse.Namespace, done_files: list[Path] | None = None
) -> RunState:
    """Starts the workflows and waits until every one has ended (followed through
    `done_files` when given, else watched on the server)."""
    state = RunState(total=args.workflows)
    began = time.monotonic()
    deadline = time.monotonic() + args.timeout
    origin = api.removesuffix("/api")
    async with (
        ConductorClient(api, timeout_s=60, max_connections=args.starters) as client,
        HttpPool(origin, max_connections=1) as watch_pool,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_progress_loop, state, workload.name, not args.no_progress)
        async with trio.open_nursery() as inner:
            inner.start_soon(_start_all, client, workload, state, args.rate, args.starters)
            target = (
                f"{client.base_url.removeprefix(origin)}/workflow/bulk/search?includeTasks=false"
            )
            if done_files is None:
                inner.start_soon(_watch, watch_pool, target, state, deadline)
            else:
                inner.start_soon(_follow, watch_pool, target, state, deadline, done_files)
        nursery.cancel_scope.cancel()
    if not args.no_progress:
        _progress(state, began, workload.name, final=True)
    return state


def run_load(args: argparse.Namespace, api: str, pid: int | None, folder: Path) -> dict[str, Any]:
    """One throughput run; returns the report."""
    workload = WORKLOADS[args.workload]
    register(api, workload)
    final_ref = None if args.sdk or args.compare_sdk else workload.final_ref
    workers = start_workers(api, folder, args.workers, args.concurrency, args.sdk, final_ref)
    worker_pids = [proc.pid for proc, _ in workers]
    done_files = None if final_ref is None else [s.with_suffix(".done") for _, s in workers]
    try:
        cpu0, wall0 = load_server.cpu_seconds(pid), time.monotonic()
        workers0, gen0 = _cpu_of(worker_pids), time.process_time()
        state = trio.run(drive, api, workload, args, done_files)
        cpu1, wall1 = load_server.cpu_seconds(pid), time.monotonic()
        workers1, gen1 = _cpu_of(worker_pids), time.process_time()
        rss = load_server.rss_mb(pid)
        # Outside the measured span: the server's word on every worker-reported end.
        completion: dict[str, Any] = (
            {"source": "server"} if done_files is None else trio.run(verify, api, state)
        )
    finally:
        figures = stop_workers(workers)
    if completion.get("not_completed"):
        state.completed -= completion["not_completed"]
        state.failed += completion["not_completed"]
    dispatch = figures.dispatch_ms
    seconds = max(1e-9, (state.end_ms - state.first_sent_ms) / 1000)
    cpu_pct = None if cpu0 is None or cpu1 is None else round(100 * (cpu1 - cpu0) / (wall1 - wall0))
    done = max(1, state.completed)
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    workers_cpu = None if workers0 is None or workers1 is None else workers1 - workers0
    cpu_ms = {
        "server": None if server_cpu is None else round(1000 * server_cpu / done, 3),
        "workers": None if workers_cpu is None else round(1000 * workers_cpu / done, 3),
        "generator": round(1000 * (gen1 - gen0) / done, 3),
    }
    tasks_done = max(1, state.completed * workload.worker_tasks)
    return {
        "workload": workload.name,
        "workflows": state.completed,
        "failed": state.failed,
        "workflows_per_s": round(state.completed / seconds, 1),
        "tasks_per_s": round(state.completed * workload.worker_tasks / seconds, 1),
        "latency_ms": {q: percentile(state.latencies_ms, n) for q, n in _QS},
        "dispatch_ms": {q: percentile(dispatch, n) for q, n in _QS},
        "dispatch_queued_ms": {q: percentile(figures.queued_ms, n) for q, n in _QS},
        "queued_tasks": len(figures.queued_ms),
        "slots_full_s": round(figures.slots_full_s, 3),
        "max_in_flight": figures.max_in_flight,
        "concurrency": args.concurrency,
        "completion": completion,
        "worker_tasks": len(dispatch),
        "server_cpu_pct": cpu_pct,
        "cpu_ms_per_workflow": cpu_ms,
        "worker_cpu_us_per_task": (
            None if workers_cpu is None else round(1e6 * workers_cpu / tasks_done, 1)
        ),
        "generator_cpu_us_per_start": round(1e6 * (gen1 - gen0) / max(1, len(state.sent_ms)), 1),
        "server_rss_mb": None if rss is None else round(rss, 1),
        "workers": args.workers,
        "client": "conductor-python" if args.sdk else "podium",
        "rate": args.rate or "max",
        "seconds": round(seconds, 2),
    }


_QS = (("p50", 50), ("p95", 95), ("p99", 99))


def _cpu_of(pids: list[int]) -> float | None:
    """Summed CPU seconds of processes (None if any cannot be read)."""
    total = 0.0
    for pid in pids:
        cpu = load_server.cpu_seconds(pid)
        if cpu is None:
            return None
        total += cpu
    return total


def compare_clients(
    args: argparse.Namespace, api: str, pid: int | None, folder: Path
) -> dict[str, Any]:
    """Podium's client, then conductor-python's, then Podium's again, on one server.

    The report is the Podium runs' better one, with the SDK run under "sdk" and
    "sdk_ratio" = Podium workflows/s over the SDK's; running Podium's client on both
    sides of the SDK run shows how much the machine drifted meanwhile.
    """
    runs = []
    for sdk in (False, True, False):
        args.sdk = sdk
        runs.append(run_load(args, api, pid, folder))
    args.sdk = False
    podium = max(runs[0], runs[2], key=lambda r: float(r["workflows_per_s"]))
    sdk_rate = float(runs[1]["workflows_per_s"])
    return {
        **podium,
        "failed": runs[0]["failed"] + runs[1]["failed"] + runs[2]["failed"],
        "podium_runs_workflows_per_s": [runs[0]["workflows_per_s"], runs[2]["workflows_per_s"]],
        "sdk": runs[1],
        "sdk_ratio": round(float(podium["workflows_per_s"]) / sdk_rate, 2) if sdk_rate else None,
    }


def main(argv: list[str] | None = None) -> int:
    from bench.load_hold import run_hold

    parser = argparse.ArgumentParser(prog="podium load", description=(__doc__ or "").split("\n")[0])
    add_args(parser)
    args = parser.parse_args(argv)
    return run(args, run_hold)


def run(args: argparse.Namespace, run_hold: Any) -> int:
    """Runs the harness for parsed arguments; 0 when every workflow completed."""
    if args.starters is None:
        # A held workflow costs the server less than a run: it takes more requests in
        # flight to load it (measured: ~2x the starts/s with 64 than with 16).
        args.starters = 64 if args.hold else 16
    for name in ("workflows", "workers", "concurrency", "starters"):
        if getattr(args, name) < 1:
            print(f"podium load: --{name} must be >= 1", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="podium-load-") as tmp:
        folder = Path(tmp)
        server = None
        if args.server:
            base, pid = args.server.rstrip("/").removesuffix("/api"), args.server_pid
            store = args.store or "external"
        else:
            store = args.store or f"sqlite:///{folder / 'podium.db'}"
            server = load_server.start_server(store, folder)
            base, pid = server.base_url, server.process.pid
        try:
            if args.hold:
                report = run_hold(args, f"{base}/api", pid, store)
            elif args.compare_sdk:
                report = compare_clients(args, f"{base}/api", pid, folder)
            else:
                report = run_load(args, f"{base}/api", pid, folder)
        finally:
            if server is not None:
                status = server.stop()
                if status != 0:
                    print(f"podium load: the server exited {status}", file=sys.stderr)
    report["store"] = store.split("://")[0] if "://" in store else store
    _print_report(report)
    if args.json:
        print(json.dumps(report))
    return 0 if report.get("failed", 0) == 0 else 1


def _print_report(report: dict[str, Any]) -> None:
    width = max(22, *(len(key) + 2 for key in report))
    for key, value in report.items():
        print(f"{key:<{width}}{value}")


if __name__ == "__main__":
    sys.exit(main())
