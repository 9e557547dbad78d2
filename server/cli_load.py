"""`podium load`: the load harness (bench/load.py), run from a source checkout.

Rules: the harness lives in bench/, which is not an installed package (it is developer
tooling and imports test-like workload definitions), so this command imports it lazily
and only works from the repository root; elsewhere it exits 1 naming the fix. Keeping
the harness out of the installed packages keeps `pip install podium` free of it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from server.cli import COMMANDS

_NOT_A_CHECKOUT = (
    "podium load: the load harness ships with Podium's source tree (bench/), not with the "
    "installed package; run it from a checkout's root (`cd podium && podium load ...` or "
    "`python -m bench.load ...`)"
)


def _import_bench() -> object | None:
    # The checkout is the current directory or the one holding an editable install.
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / "bench" / "load.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            return importlib.import_module("bench.load_args")
    return None


def add_args(parser: argparse.ArgumentParser) -> None:
    module = _import_bench()
    if module is None:
        # Accept whatever was typed, so the user sees the fix rather than a usage error.
        parser.add_argument("_ignored", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(_load_missing=True)
        return
    module.add_args(parser)  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_load_missing", False):
        print(_NOT_A_CHECKOUT, file=sys.stderr)
        return 1
    load = importlib.import_module("bench.load")
    hold = importlib.import_module("bench.load_hold")
    result: int = load.run(args, hold.run_hold)
    return result


COMMANDS["load"] = ("drive a server with a load workload and report throughput", add_args, run)
