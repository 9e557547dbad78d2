"""The load harness's command-line options, shared by `python -m bench.load` and
`podium load`.

Rules: argparse only, no heavy imports (`podium` builds every subcommand's parser on
each start, so this module must stay cheap to import).
"""

from __future__ import annotations

import argparse

from bench.load_workloads import WORKLOADS


def add_args(parser: argparse.ArgumentParser) -> None:
    """The harness's options (shared by `python -m bench.load` and `podium load`)."""
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="sequential-5")
    parser.add_argument("--workflows", "-W", type=int, default=2000, help="workflows to run")
    parser.add_argument("--rate", type=float, default=0, help="starts per second (0 = max)")
    parser.add_argument("--workers", "-K", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="tasks at once per worker")
    parser.add_argument("--starters", type=int, default=16, help="concurrent start requests")
    parser.add_argument("--server", help="target a running server (root URL) instead")
    parser.add_argument("--server-pid", type=int, help="the --server's pid, for CPU and RSS")
    parser.add_argument("--store", help="store URL for the self-started server")
    parser.add_argument("--sdk", action="store_true", help="conductor-python workers instead")
    parser.add_argument("--hold", type=int, metavar="N", help="hold N workflows on a WAIT task")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before giving up")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
