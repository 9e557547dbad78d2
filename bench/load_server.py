"""The server side of the load harness: start `podium server`, read its CPU and RSS.

Rules: a self-started server listens on a free loopback port (`--port 0`; the port is
read from its start-up log line) and is stopped with SIGTERM. CPU and RSS come from
/proc/<pid> (Linux); without a pid (a `--server` URL) they are reported as None.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+) ")
STARTUP_TIMEOUT_S = 30.0
# `python -m server.cli` would register subcommands into __main__, not server.cli.
_RUN_CLI = "import sys; from server.cli import main; sys.exit(main(sys.argv[1:]))"
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class ServerProcess:
    """A `podium server` this harness started."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> int:
        """SIGTERM, then wait (kill after 30 s); returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    store_url: str, folder: Path, extra_env: dict[str, str] | None = None
) -> ServerProcess:
    """Starts `python -m server.cli server` on a free port and waits for /health."""
    log_path = folder / "server.log"
    env = {**os.environ, **(extra_env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _RUN_CLI, "server", "--port", "0", "--store", store_url],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            server = ServerProcess(match.group(1), proc, log_path)
            _wait_healthy(server.base_url, deadline)
            return server
        if proc.poll() is not None:
            raise RuntimeError(f"podium server exited {proc.returncode}:\n{log_path.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"podium server did not start in {STARTUP_TIMEOUT_S} s")


def _wait_healthy(base_url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{base_url}/health never answered 200")


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of `pid` so far (None without a pid or /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int | None) -> float | None:
    """Resident set size of `pid` in MiB (None without a pid or /proc)."""
    if pid is None:
        return None
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return None
    return pages * _PAGE / 2**20
