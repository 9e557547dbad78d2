"""`podium demo [--server URL]`: run the `podium_kitchensink` sample end to end.

Rules: argument parsing only; the work is in server/demo.py, imported when the command
runs, so other subcommands (`podium validate`) never load trio, httpx or the client.
With `--server` the demo uses that server; without it, it starts (and afterwards stops)
its own `podium server` on a free loopback port with a temporary SQLite store. Exit
status 0 only if the workflow COMPLETED, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from server.cli import COMMANDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        metavar="URL",
        help="use this running server (e.g. http://127.0.0.1:8080) instead of starting one",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the run (default 120)"
    )
    parser.add_argument("--mod", type=int, default=3, help="the sample's `mod` input (default 3)")


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 only if the workflow COMPLETED."""
    if args.timeout <= 0:
        print(f"podium demo: --timeout must be > 0, got {args.timeout}", file=sys.stderr)
        return 1
    from server.demo import run_demo

    return run_demo(args.server, args.timeout, args.mod)


COMMANDS["demo"] = (
    "run the podium_kitchensink sample end to end (starts a server unless --server is given)",
    add_arguments,
    run,
)
