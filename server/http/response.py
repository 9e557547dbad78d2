"""What a handler returns, and how it is written to the wire.

Rules: a Response is status + body bytes + content type + optional extra headers; the
connection adds `content-length` (never chunked), `date`, and `connection: close` when it
is the last response on the connection. 1xx, 204 and 304 carry neither a body nor a
`content-length` (RFC 9110 forbids one on 204). HEAD responses carry the headers the GET
would have, body omitted. JSON is encoded with msgspec; header lines that never change are
pre-encoded once, because this is on every request's path.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, ClassVar

from core.codec import encode


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")


_STATUS_LINES: dict[int, bytes] = {s.value: _status_line(s.value) for s in HTTPStatus}
_NO_BODY_STATUSES = frozenset({204, 304})
_CLOSE = b"connection: close\r\n"
_KEEP_ALIVE = b"connection: keep-alive\r\n"
_date_cache: list[Any] = [0, b""]


def _date_header() -> bytes:
    # RFC 9110 asks origin servers for a Date header; formatting it costs ~5 µs, so it
    # is formatted at most once per second.
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0] = now
        _date_cache[1] = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
    date: bytes = _date_cache[1]
    return date


class Response:
    """An HTTP response: status, body bytes, content type and extra headers.

    Build one with the class methods (`Response.json(...)`, `Response.text(...)`,
    `Response.empty()`, `Response.no_content()`) or the constructor.
    """

    __slots__ = ("body", "content_type", "headers", "status")

    JSON: ClassVar[bytes] = b"application/json"
    TEXT: ClassVar[bytes] = b"text/plain; charset=utf-8"

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        *,
        content_type: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Create a response.

        Args:
            status: the HTTP status code.
            body: the body bytes (ignored for 204 and 304).
            content_type: the `content-type` value, or None for no such header.
            headers: extra `(name, value)` headers; names are sent as given.
        """
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        """A JSON response: `obj` (a msgspec Struct or builtins) encoded with msgspec."""
        return cls(status, encode(obj), content_type=cls.JSON)

    @classmethod
    def raw_json(cls, body: bytes, status: int = 200) -> Response:
        """A JSON response from bytes that are already encoded."""
        return cls(status, body, content_type=cls.JSON)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        """A `text/plain` response, as Conductor answers with ids."""
        return cls(status, text.encode("utf-8"), content_type=cls.TEXT)

    @classmethod
    def empty(cls, status: int = 200) -> Response:
        """A response with an empty body (Conductor's answer for `void` endpoints)."""
        return cls(status)

    @classmethod
    def no_content(cls) -> Response:
        """204 No Content."""
        return cls(204)

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes, {self.content_type!r})"


def serialize(
    response: Response, *, head_only: bool, keep_alive: bool, http10: bool = False
) -> bytes:
    """The bytes of a response on the wire.

    Args:
        response: what the handler returned.
        head_only: the request was HEAD: send the headers of the full response, no body.
        keep_alive: False adds `connection: close` (the connection ends after this one).
        http10: the request was HTTP/1.0, whose clients assume a close unless told
            `connection: keep-alive`.

    Returns:
        Status line, headers and body, ready for one `send_all`.

    Raises:
        ValueError: an extra header contains CR or LF (a handler bug; prevents header
            injection).
    """
    status = response.status
    parts = [_STATUS_LINES.get(status) or _status_line(status), _date_header()]
    body = response.body
    if status in _NO_BODY_STATUSES or status < 200:
        body = b""
    else:
        if response.content_type is not None:
            parts.append(b"content-type: " + response.content_type + b"\r\n")
        parts.append(b"content-length: %d\r\n" % len(body))
    if response.headers:
        for name, value in response.headers:
            line = f"{name}: {value}\r\n".encode("latin-1")
            if line.count(b"\n") != 1 or line.count(b"\r") != 1:
                raise ValueError(f"header {name!r} contains CR or LF")
            parts.append(line)
    if not keep_alive:
        parts.append(_CLOSE)
    elif http10:
        parts.append(_KEEP_ALIVE)
    parts.append(b"\r\n")
    if body and not head_only:
        parts.append(body)
    return b"".join(parts)


#: Sent before reading the body of a request that asked `Expect: 100-continue`.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
