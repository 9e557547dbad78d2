"""`podium server`: run the Conductor-compatible server.

Rules: binds 127.0.0.1 unless `--host` says otherwise; the default store is SQLite at
./.podium/podium.db (the folder is created). Logs one line on start with the address,
the store URL (password redacted) and the hot-path implementation. SIGINT/SIGTERM stop
it gracefully; exit status 0 after a clean stop, 1 on a startup error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.errors import PodiumError
from server.cli import COMMANDS

SQLITE_PREFIX = "sqlite:///"
# ServerConfig's default (tests/server/test_app.py checks they agree). Spelled out here
# because importing server.config loads the engine and trio, which `podium validate`
# (sharing this CLI) must not pay for.
DEFAULT_STORE_URL = "sqlite:///./.podium/podium.db"


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE_URL,
        help=f"store URL: memory://, sqlite:///file.db, redis://..., postgresql://... "
        f"(default {DEFAULT_STORE_URL})",
    )
    parser.add_argument(
        "--samples", action="store_true", help="register the bundled sample definitions"
    )


def _prepare_sqlite_folder(url: str) -> None:
    if url.startswith(SQLITE_PREFIX):
        path = url[len(SQLITE_PREFIX) :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def run(args: argparse.Namespace) -> int:
    # Imported here so other subcommands do not pay for trio and the engine.
    from server.app import run as run_server
    from server.config import ServerConfig

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not 0 <= args.port <= 65535:
        print(f"podium server: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 1
    config = ServerConfig(
        host=args.host,
        port=args.port,
        store_url=args.store,
        samples=args.samples,
        handle_signals=True,
    )
    failures: list[BaseException] = []
    try:
        _prepare_sqlite_folder(config.store_url)
        run_server(config)
    except* (PodiumError, OSError) as group:
        # Nurseries wrap startup errors in an ExceptionGroup; report each plainly.
        failures.extend(group.exceptions)
    for exc in failures:
        print(f"podium server: {exc}", file=sys.stderr)
    return 1 if failures else 0


COMMANDS["server"] = ("run the Conductor-compatible server", add_args, run)
