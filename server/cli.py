"""The `podium` command line.

Rules: argument parsing and dispatch only; each subcommand's work lives in its own module.
Exit status 0 on success, 1 on a user-visible error, 2 on bad usage (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

# subcommand name -> (help, function that adds arguments, function that runs it)
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {}


def main(argv: Sequence[str] | None = None) -> int:
    _register_builtin_commands()
    parser = argparse.ArgumentParser(prog="podium", description="Podium workflow server")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _run) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    return COMMANDS[args.command][2](args)


def _register_builtin_commands() -> None:
    # Imported here so `podium validate` does not pay for the server's imports.
    import importlib

    for module in (
        "server.cli_validate",
        "server.cli_server",
        "server.cli_demo",
        "server.cli_load",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


if __name__ == "__main__":
    # Subcommand modules register into `server.cli.COMMANDS`; under `python -m server.cli`
    # this file runs as `__main__`, a different module object, so dispatch through the
    # imported one.
    from server.cli import main as _main

    sys.exit(_main())
