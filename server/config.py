"""The server's configuration: one msgspec Struct, built by the CLI (or a test).

Rules: explicit values only (nothing is read from the environment here); the defaults
are what `podium server` uses with no flags: loopback only, SQLite under ./.podium.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import msgspec

from server.engine import EngineConfig

DEFAULT_STORE_URL = "sqlite:///./.podium/podium.db"


class ServerConfig(msgspec.Struct, kw_only=True, frozen=True):
    """How `server.app.serve` runs.

    Attributes:
        host: the address to bind; 127.0.0.1 unless told otherwise.
        port: the TCP port (0 picks a free one).
        store_url: memory://, sqlite:///path, redis://..., postgresql://...
        samples: register the definitions shipped in server/samples/ at startup.
        graceful_timeout: seconds in-flight requests get on shutdown.
        handle_signals: stop gracefully on SIGINT/SIGTERM (main thread only).
        engine: the engine's tuning knobs.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    store_url: str = DEFAULT_STORE_URL
    samples: bool = False
    graceful_timeout: float = 10.0
    handle_signals: bool = False
    engine: EngineConfig = msgspec.field(default_factory=EngineConfig)


def redacted_url(url: str) -> str:
    """`url` with any password replaced by `***` (for logs and /api/admin/config)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
