"""A lean keep-alive HTTP/1.1 client for the load harness's bulk request loops.

Rules: one `Connection` is one TCP connection on trio, used by one task at a time, one
request in flight (no pipelining). Requests are written as bytes in one send; replies
must carry Content-Length (Podium's server always sends it; chunked replies raise).
It exists because httpx's connection pool costs ~1 ms of client CPU per request, which
made the generator, not the server, the limit of `--hold` runs (measured: the generator
at ~95% of a core at ~500 starts/s). A connection closed by the server is reopened once
for the next request; the request that saw the close raises.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import trio

_MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """A malformed reply, or one this client does not read (no Content-Length)."""


class Connection:
    """One keep-alive connection to `base_url` (http://host:port[/prefix])."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"base_url {base_url!r}: only http://host:port[/path] is supported")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._host_header = parts.netloc.encode()
        self._stream: trio.SocketStream | None = None
        self._buffer = bytearray()

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

    async def post(self, path: str, body: bytes = b"{}") -> tuple[int, bytes]:
        """POST a JSON body; returns (status, reply body)."""
        head = (
            f"POST {self._prefix}{path} HTTP/1.1\r\nhost: {self._host_header.decode()}\r\n"
            f"content-type: application/json\r\naccept: text/plain, application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        if self._stream is None:
            self._stream = await trio.open_tcp_stream(self._host, self._port)
            self._buffer.clear()
        try:
            await self._stream.send_all(head + body)
            return await self._read_reply()
        except BaseException:
            stream, self._stream = self._stream, None
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await stream.aclose()
            raise

    async def _fill(self) -> None:
        assert self._stream is not None
        data = await self._stream.receive_some(65536)
        if not data:
            raise HttpError("the server closed the connection")
        self._buffer += data

    async def _read_reply(self) -> tuple[int, bytes]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > _MAX_HEAD:
                raise HttpError("reply head too large")
            await self._fill()
        lines = bytes(self._buffer[:end]).split(b"\r\n")
        del self._buffer[: end + 4]
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError) as exc:
            raise HttpError(f"bad status line {lines[0]!r}") from exc
        length = None
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise HttpError("chunked replies are not supported")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise HttpError("reply without content-length")
        while len(self._buffer) < length:
            await self._fill()
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        if close:
            await self.aclose()
        return status, body
