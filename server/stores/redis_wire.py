"""One trio-native Redis connection: hiredis packs the commands and parses the replies.

Rules:
- No protocol code here: `hiredis.pack_command` writes each command and `hiredis.Reader`
  parses the replies (RESP2); this module only moves bytes over a trio stream.
- `roundtrip(commands)` sends every command in one write and reads exactly as many
  replies, in order; `roundtrip_packed(data, count)` does the same for commands packed
  beforehand with `pack(command)` (a command that cannot be packed raises TypeError there,
  before anything is sent). Error replies come back as values
  (redis.exceptions.ResponseError, NoScriptError for NOSCRIPT), never raised, so one bad
  command fails only its slot. `store_error` turns the transient ones (LOADING, BUSY,
  OOM, READONLY, ...) into core.errors.Unavailable for the store's callers.
- Not safe for concurrent use: its one caller (server.stores.redis_batch) serializes.
- Any failure of the connection (refused, reset, end of stream, TLS, timeout, a protocol
  error, or the caller being cancelled mid-way) closes it and raises core.errors.Unavailable;
  whether the commands of that round trip ran is unknown. The next round trip reconnects.
- The URL is read by redis-py's `parse_url` (host, port, db, user, password, unix socket,
  rediss:// for TLS). Of its query parameters Podium honours socket_timeout (seconds to wait
  for a round trip's replies), socket_connect_timeout, ssl_cert_reqs and ssl_ca_certs; any
  other is refused with BadRequest rather than silently ignored.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import hiredis
import trio
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import NoScriptError, ResponseError

from core.errors import BadRequest, Unavailable

SUPPORTED_PARAMS = ("socket_timeout", "socket_connect_timeout", "ssl_cert_reqs", "ssl_ca_certs")
_URL_FIELDS = {"host", "port", "db", "username", "password", "path", "connection_class"}
_READ_SIZE = 65536


def pack(command: tuple[Any, ...]) -> bytes:
    """One command in RESP (str, bytes, int and float arguments); TypeError for others."""
    packed: bytes = hiredis.pack_command(command)
    return packed


# Error replies that mean "Redis cannot serve this right now", not "this command is wrong":
# still loading its dataset, a script running too long, out of memory, a replica that is
# read-only or has lost its primary. A caller may retry them, so they become Unavailable.
_TRANSIENT_ERRORS = ("LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN", "NOREPLICAS")


def store_error(reply: Exception) -> Exception:
    """What a Store raises for an error reply: Unavailable (503, retryable) for the
    transient ones above, the reply itself (a ResponseError: a bug, 500) otherwise."""
    code = str(reply).split(" ", 1)[0]
    if code in _TRANSIENT_ERRORS:
        failure = Unavailable(f"Redis cannot serve the request now: {reply}")
        failure.__cause__ = reply
        return failure
    return reply


def _error_reply(message: str) -> ResponseError:
    """hiredis's replyError hook: the exception object an error reply becomes."""
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where and how to connect, read from a redis:// / rediss:// / unix:// URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str | None = None
    reply_timeout_s: float | None = None
    connect_timeout_s: float | None = None

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """Raises BadRequest for a malformed URL or a query parameter Podium does not honour."""
        try:
            parts: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise BadRequest(f"store URL {url!r}: {exc}") from exc
        unknown = sorted(set(parts) - _URL_FIELDS - set(SUPPORTED_PARAMS))
        if unknown:
            raise BadRequest(
                f"store URL {url!r}: query parameter {unknown[0]!r} is not supported; "
                f"use only {', '.join(SUPPORTED_PARAMS)} (and prefix)"
            )
        kind = parts.get("connection_class")
        cert_reqs = str(parts.get("ssl_cert_reqs") or "required").lower()
        if cert_reqs not in ("required", "none"):
            raise BadRequest(f"store URL {url!r}: ssl_cert_reqs must be 'required' or 'none'")
        return cls(
            host=parts.get("host") or "127.0.0.1",
            port=int(parts.get("port") or 6379),
            path=parts.get("path") if kind is UnixDomainSocketConnection else None,
            db=int(parts.get("db") or 0),
            username=parts.get("username"),
            password=parts.get("password"),
            tls=kind is SSLConnection,
            tls_verify=cert_reqs == "required",
            tls_ca_file=parts.get("ssl_ca_certs"),
            reply_timeout_s=parts.get("socket_timeout"),
            connect_timeout_s=parts.get("socket_connect_timeout"),
        )

    def describe(self) -> str:
        where = self.path or f"{self.host}:{self.port}"
        return f"{'rediss' if self.tls else 'redis'}://{where}/{self.db}"


class RedisWire:
    """A lazily (re)connected Redis connection doing pipelined round trips."""

    def __init__(self, address: RedisAddress) -> None:
        self.address = address
        self._stream: trio.abc.Stream | None = None
        self._reader: Any = None  # hiredis.Reader (untyped)
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._stream is not None

    async def connect(self) -> None:
        """Open the connection (AUTH and SELECT included) unless it is open already."""
        if self._stream is not None:
            return
        a = self.address
        timeout = a.connect_timeout_s if a.connect_timeout_s is not None else float("inf")
        stream: trio.abc.Stream | None = None
        try:
            with trio.fail_after(timeout):
                if a.path is not None:
                    stream = await trio.open_unix_socket(a.path)
                else:
                    stream = await trio.open_tcp_stream(a.host, a.port)
                if a.tls:
                    context = ssl.create_default_context(cafile=a.tls_ca_file)
                    if not a.tls_verify:
                        context.check_hostname = False
                        context.verify_mode = ssl.CERT_NONE
                    tls_stream = trio.SSLStream(stream, context, server_hostname=a.host)
                    stream = tls_stream
                    await tls_stream.do_handshake()
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            raise Unavailable(f"Redis is unavailable at {a.describe()}: {exc!r}") from exc
        self._stream = stream
        self._reader = hiredis.Reader(replyError=_error_reply)
        self.connects += 1
        setup: list[tuple[Any, ...]] = []
        if a.password is not None:
            auth = ("AUTH", a.password) if a.username is None else ("AUTH", a.username, a.password)
            setup.append(auth)
        if a.db:
            setup.append(("SELECT", a.db))
        if setup:
            for reply in await self.roundtrip(setup):
                if isinstance(reply, ResponseError):
                    await self.close()
                    raise Unavailable(f"Redis at {a.describe()} refused the connection: {reply}")

    async def roundtrip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send the commands in one write; return their replies (errors as values)."""
        if not commands:
            return []
        return await self.roundtrip_packed(b"".join([pack(c) for c in commands]), len(commands))

    async def roundtrip_packed(self, data: bytes, wanted: int) -> list[Any]:
        """Send `wanted` packed commands in one write; return their replies in order."""
        await self.connect()
        stream, reader = self._stream, self._reader
        assert stream is not None
        replies: list[Any] = []
        timeout = self.address.reply_timeout_s
        try:
            with trio.fail_after(timeout if timeout is not None else float("inf")):
                await stream.send_all(data)
                while True:
                    reply = reader.gets()
                    if reply is False:
                        chunk = await stream.receive_some(_READ_SIZE)
                        if not chunk:
                            raise trio.BrokenResourceError("Redis closed the connection")
                        reader.feed(chunk)
                        continue
                    replies.append(reply)
                    if len(replies) == wanted:
                        return replies
        except (
            OSError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            trio.TooSlowError,
            hiredis.ProtocolError,
        ) as exc:
            await self.close()
            where = self.address.describe()
            raise Unavailable(f"Redis is unavailable at {where}: {exc!r}") from exc
        except BaseException:
            # Cancelled (or anything else) between send and the last reply: the stream is
            # mid-reply, so it cannot be reused.
            await self.close()
            raise

    async def close(self) -> None:
        stream, self._stream, self._reader = self._stream, None, None
        if stream is not None:
            await trio.aclose_forcefully(stream)
