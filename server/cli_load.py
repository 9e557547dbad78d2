"""`podium load`: the load harness (bench/load.py), run from a source checkout.

Rules: the harness lives in bench/, which is not an installed package (developer
tooling: it starts servers and worker processes), so this command imports it lazily and
works only from a checkout (the current directory, or the one an editable install points
at); elsewhere it exits 1 naming the fix. The options are declared here (argparse only,
cheap: `podium` builds every subcommand's parser on start) and reused by
`python -m bench.load`; WORKLOAD_NAMES must match bench/load_workloads.WORKLOADS (a
test checks it).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

from server.cli import COMMANDS

WORKLOAD_NAMES = ("fork-10", "mixed", "sequential-5")
NOT_A_CHECKOUT = (
    "podium load: the load harness ships with Podium's source tree (bench/), not with the "
    "installed package; run it from a checkout's root (`podium load ...` or "
    "`python -m bench.load ...`)"
)


def find_bench() -> ModuleType | None:
    """bench.load from the current directory or the checkout holding this file, if any."""
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / "bench" / "load.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            return importlib.import_module("bench.load")
    return None


def add_args(parser: argparse.ArgumentParser) -> None:
    """The harness's options (shared by `python -m bench.load` and `podium load`)."""
    parser.add_argument("--workload", choices=WORKLOAD_NAMES, default="sequential-5")
    parser.add_argument("--workflows", "-W", type=int, default=2000, help="workflows to run")
    parser.add_argument("--rate", type=float, default=0, help="starts per second (0 = max)")
    parser.add_argument("--workers", "-K", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=64, help="tasks at once per worker")
    parser.add_argument(
        "--starters",
        type=int,
        default=None,
        help="concurrent start (and --hold completion) requests (default 16; 64 with --hold)",
    )
    parser.add_argument("--server", help="target a running server (root URL) instead")
    parser.add_argument("--server-pid", type=int, help="the --server's pid, for CPU and RSS")
    parser.add_argument("--store", help="store URL for the self-started server")
    parser.add_argument("--sdk", action="store_true", help="conductor-python workers instead")
    parser.add_argument(
        "--compare-sdk",
        action="store_true",
        help="run Podium's client, conductor-python's, then Podium's again; report both",
    )
    parser.add_argument("--hold", type=int, metavar="N", help="hold N workflows on a WAIT task")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before giving up")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    load = find_bench()
    if load is None:
        print(NOT_A_CHECKOUT, file=sys.stderr)
        return 1
    hold = importlib.import_module("bench.load_hold")
    result: int = load.run(args, hold.run_hold)
    return result


COMMANDS["load"] = ("drive a server with a load workload and report throughput", add_args, run)
