"""Limits and timeouts of the HTTP layer.

Rules: every limit has a default a Conductor user would expect and can be changed per
server. The idle keep-alive timeout must stay above the official SDK's 30 s
`keepalive_expiry` so the server never closes a pooled connection first (a closed pooled
connection fails a POST that the SDK does not retry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from server.http.errors import HOSTNAME


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """How the HTTP layer behaves; all durations in seconds.

    Attributes:
        keepalive_timeout: close a connection idle (no request in progress) this long.
        header_timeout: a started request must finish its headers within this.
        body_timeout: a request body may pause at most this long between reads.
        write_timeout: a response write may block at most this long (client not reading).
        linger_timeout: after the server decides to close, keep reading (and discarding)
            this long so unread client data does not turn the close into a reset.
        max_header_bytes: request line + headers limit; larger gets 431.
        max_body_bytes: request body limit; larger gets 413.
        max_buffered_bytes: pipelined bytes read ahead while a long-poll handler runs.
        backlog: the listen backlog (the SDK opens up to 100 connections at once).
        graceful_timeout: on shutdown, in-flight requests get this long before cancel.
        reaper_interval: how often timeouts are checked (their resolution).
        instance: the `instance` field of error bodies (Conductor: the host name).
    """

    keepalive_timeout: float = 75.0
    header_timeout: float = 30.0
    body_timeout: float = 30.0
    write_timeout: float = 30.0
    linger_timeout: float = 2.0
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 16 * 1024 * 1024
    max_buffered_bytes: int = 1024 * 1024
    backlog: int = 4096
    graceful_timeout: float = 10.0
    reaper_interval: float = 1.0
    instance: str = HOSTNAME

    def __post_init__(self) -> None:
        for name in (
            "keepalive_timeout",
            "header_timeout",
            "body_timeout",
            "write_timeout",
            "linger_timeout",
            "graceful_timeout",
            "reaper_interval",
        ):
            value = getattr(self, name)
            if not (value > 0 and not math.isnan(value)):
                raise ValueError(
                    f"HttpConfig.{name} must be a positive number of seconds, got {value!r}"
                )
        for name in ("max_header_bytes", "max_body_bytes", "max_buffered_bytes", "backlog"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"HttpConfig.{name} must be at least 1, got {getattr(self, name)!r}"
                )
