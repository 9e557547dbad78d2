"""Throughput of Podium's HTTP layer: one server process, a trivial route, wrk as the load.

Rules: the server runs in its own process (as in production: one trio process), the
load generator in another. wrk is the reference load (`wrk -t1 -c32 -d5s`, the setting
the stack notes used); without wrk a built-in trio + h11 keep-alive client stands in
(slower: it measures the pair, so its figure is a lower bound). The figure printed is the
median of `--runs` runs, with the server's CPU time per request (utime+stime from /proc),
which other load on a shared machine disturbs far less than req/s. Routes: `/nc` answers
204 from a handler that does nothing, `/json/{id}` encodes a small msgspec Struct with a
path and a query parameter. `--compare` interleaves runs against a minimal trio + h11
loop and hypercorn's trio worker (if installed), both answering a canned 204.

`--app` loads the whole server instead (`podium server --store memory://`, every API route
and its engine): by default an empty batch poll that cannot wait
(`/api/tasks/poll/batch/nothing?count=1&timeout=0`) and `GET /api/version`; `--path` may
be given several times. `--baseline DIR` runs the same servers from another checkout
(e.g. an export of main, its hot path compiled) as well, interleaved A B A B in one run,
so before/after figures share the machine's load.

Usage: python -m bench.http [--app] [--path P ...] [--baseline DIR] [--runs 3]
       [--duration 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from functools import partial
from typing import Any

import h11
import msgspec
import trio

from server.http import HttpConfig, Request, Response, Router, serve_http
from server.http.metrics import HttpMetrics, Registry


class Item(msgspec.Struct):
    id: str
    include_tasks: bool
    tags: list[str]


def build_router() -> Router:
    router = Router()

    async def no_content(request: Request) -> Response:
        return Response.no_content()

    async def item(request: Request) -> Response:
        include = request.query_bool("includeTasks", True)
        return Response.json(Item(request.path_params["id"], include, ["a", "b"]))

    router.add("GET", "/nc", no_content)
    router.add("GET", "/json/{id}", item)
    return router


def serve(port: int) -> None:
    trio.run(partial(serve_http, build_router(), "127.0.0.1", port, config=HttpConfig()))


def serve_with_metrics(port: int) -> None:
    metrics = HttpMetrics(Registry())
    trio.run(partial(serve_http, build_router(), "127.0.0.1", port, metrics=metrics))


# -- reference servers for --compare (same machine, same load, same moment) ------------


async def _h11_connection(stream: trio.SocketStream) -> None:
    # The stack notes' "minimal trio + h11 loop": no routing, no limits, no timeouts.
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.EndOfMessage):
                response = h11.Response(status_code=204, headers=[])
                await stream.send_all(conn.send(response) + conn.send(h11.EndOfMessage()))
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return
    except (trio.BrokenResourceError, h11.RemoteProtocolError):
        return


def serve_h11_minimal(port: int) -> None:
    trio.run(partial(trio.serve_tcp, _h11_connection, port, host="127.0.0.1", backlog=4096))


def serve_hypercorn(port: int) -> None:
    # optional: only for --compare, and only if hypercorn is installed
    import hypercorn.config  # type: ignore[import-not-found]
    import hypercorn.trio  # type: ignore[import-not-found]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    trio.run(partial(hypercorn.trio.serve, app, config))


SERVERS = {
    "podium": serve,
    "podium+metrics": serve_with_metrics,
    "h11-minimal": serve_h11_minimal,
    "hypercorn": serve_hypercorn,
}


# -- load generators --------------------------------------------------------------------


def run_wrk(port: int, path: str, duration: float, connections: int) -> tuple[float, int, str]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rate is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    problems = [
        line.strip() for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line
    ]
    return float(rate.group(1)), int(total.group(1)), "; ".join(problems)


async def _client(port: int, path: str, stop_at: float, counts: list[int]) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target=path, headers=[("Host", "bench")])
    done = 0
    while trio.current_time() < stop_at:
        await stream.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.EndOfMessage):
                break
        conn.start_next_cycle()
        done += 1
    counts.append(done)
    await stream.aclose()


def run_builtin(port: int, path: str, duration: float, connections: int) -> tuple[float, int, str]:
    async def main() -> tuple[float, int, str]:
        counts: list[int] = []
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(_client, port, path, start + duration, counts)
        return sum(counts) / (trio.current_time() - start), sum(counts), ""

    return trio.run(main)


def _cpu_seconds(pid: int) -> float:
    # utime + stime of the server process: CPU per request is far less sensitive to
    # other load on a shared machine than requests per second.
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- driver -----------------------------------------------------------------------------

# What --app loads by default: a poll that finds nothing and cannot wait, and a GET that
# touches neither the engine nor the store.
APP_PATHS = ("/api/tasks/poll/batch/nothing?count=1&timeout=0", "/api/version")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start listening within 15 s")


def _start(kind: str, tree: str | None = None) -> tuple[int, subprocess.Popen[bytes]]:
    """Start server `kind` in a subprocess, from checkout `tree` if given."""
    port = _free_port()
    env = None if tree is None else {**os.environ, "PYTHONPATH": tree}
    if kind == "app":
        # Inline, so a baseline checkout needs only its server, not this bench module.
        code = (
            "import sys; from server.app import run; from server.config import ServerConfig; "
            "run(ServerConfig(port=int(sys.argv[1]), store_url='memory://'))"
        )
        command = [sys.executable, "-c", code, str(port)]
    else:
        command = [sys.executable, "-m", "bench.http", "--serve", kind, str(port)]
    proc = subprocess.Popen(command, cwd=tree, env=env)
    try:
        _wait_listening(port, proc)
    except BaseException:
        proc.kill()
        raise
    return port, proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--path",
        action="append",
        help="route to load (repeatable): /nc or /json/x?includeTasks=true; with --app an "
        "API path (default: the empty batch poll and /api/version)",
    )
    parser.add_argument("--app", action="store_true", help="load the whole server (memory store)")
    parser.add_argument(
        "--baseline", metavar="DIR", help="also run the servers from this checkout, interleaved"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--builtin", action="store_true", help="use the trio/h11 client even if wrk exists"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="interleave runs against a minimal trio+h11 loop (and hypercorn, if installed)",
    )
    parser.add_argument(
        "--metrics", action="store_true", help="also run a server that records HttpMetrics"
    )
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        SERVERS[args.serve[0]](int(args.serve[1]))
        return 0

    use_wrk = shutil.which("wrk") is not None and not args.builtin
    load = run_wrk if use_wrk else run_builtin
    if use_wrk:
        tool = f"wrk -t1 -c{args.connections} -d{args.duration:g}s"
    else:
        tool = f"built-in trio/h11 client, {args.connections} connections, {args.duration:g}s"
    if args.app:
        kinds = ["app"]
        paths = args.path or list(APP_PATHS)
    else:
        kinds = ["podium", "podium+metrics"] if args.metrics else ["podium"]
        paths = args.path or ["/nc"]
    if args.compare:
        kinds.append("h11-minimal")
        try:
            import hypercorn  # noqa: F401
        except ImportError:
            print("hypercorn is not installed: comparing with the minimal h11 loop only")
        else:
            kinds.append("hypercorn")
    # (label, kind, checkout): the baseline's servers run from its own directory.
    entries = [(kind, kind, None) for kind in kinds]
    if args.baseline:
        base = os.path.abspath(args.baseline)
        entries = [e for kind in kinds for e in ((f"{kind}@base", kind, base), (kind, kind, None))]
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    rates: dict[tuple[str, str], list[float]] = {}
    cpu_us: dict[tuple[str, str], list[float]] = {}
    try:
        for label, kind, tree in entries:
            servers[label] = _start(kind, tree)
        for run in range(1, args.runs + 1):
            for path in paths:
                for label, kind, _tree in entries:
                    port, proc = servers[label]
                    # the reference servers answer 204 on every path
                    target = path if kind in ("app", "podium", "podium+metrics") else "/"
                    cpu_before = _cpu_seconds(proc.pid)
                    rate, total, problems = load(port, target, args.duration, args.connections)
                    per_request = (_cpu_seconds(proc.pid) - cpu_before) / max(total, 1) * 1e6
                    rates.setdefault((label, path), []).append(rate)
                    cpu_us.setdefault((label, path), []).append(per_request)
                    note = f"  ({problems})" if problems else ""
                    print(
                        f"run {run} {label} {target}: {rate:,.0f} req/s, "
                        f"server CPU {per_request:.1f} µs/req{note}",
                        flush=True,
                    )
    finally:
        for _port, proc in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
    print(f"load: {tool}; each server is one process")
    for (label, path), samples in rates.items():
        median = statistics.median(samples)
        cpu = statistics.median(cpu_us[(label, path)])
        print(
            f"{label:16} GET {path}: median {median:,.0f} req/s over {args.runs} runs; "
            f"server CPU {cpu:.1f} µs/req (= {1e6 / cpu:,.0f} req/s per busy core)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
