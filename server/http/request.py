"""The request a handler receives, with typed accessors that fail as 400s.

Rules: everything here is parsed lazily (the query string and the headers on first use)
because most handlers read little. Accessors never raise anything but PodiumError subclasses for bad
input: a garbage query value is a 400 naming the parameter and what it accepts, a bad
body is a 400 with `validationErrors`. Boolean query values are case-insensitive because
the official SDK sends both `true` (httpx, GET) and `True` (urlencode, POST/PUT/DELETE).
The `disconnected` event is set only for routes registered with `long_poll=True`, whose
connection watches the socket while the handler runs.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import parse_qsl

import trio

from core.codec import decode
from server.http.errors import QueryParameterError

T = TypeVar("T")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class Request:
    """One parsed HTTP request.

    Attributes:
        method: upper-case method (`GET`).
        path: the raw path (percent-encoded, no query string).
        query_string: the raw query string, without `?`.
        headers: lower-case header names to values (repeated headers joined by `, `).
        body: the whole body, decoded from chunked framing if it was chunked.
        path_params: values of the route template's `{name}` segments, percent-decoded.
        keep_alive: whether the client allows the connection to stay open afterwards.
        http_version: `"1.1"` or `"1.0"`.
    """

    __slots__ = (
        "_disconnected",
        "_headers",
        "_query",
        "_raw_headers",
        "body",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "path_params",
        "query_string",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query_string: str = "",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        keep_alive: bool = True,
        http_version: str = "1.1",
        raw_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        # Either given decoded, or as the parser saw them (decoded on first use).
        if headers is None and raw_headers is None:
            headers = {}
        self._headers = headers
        self._raw_headers = raw_headers
        self.body = body
        self.keep_alive = keep_alive
        self.http_version = http_version
        self.path_params: dict[str, str] = {}
        self._query: dict[str, list[str]] | None = None
        self._disconnected: trio.Event | None = None

    def __repr__(self) -> str:
        query = f"?{self.query_string}" if self.query_string else ""
        return f"<Request {self.method} {self.path}{query}>"

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case header names to values; repeated headers joined by `, `."""
        headers = self._headers
        if headers is None:
            headers = {}
            for name, value in self._raw_headers or ():
                key = name.decode("latin-1").lower()
                text = value.decode("latin-1")
                previous = headers.get(key)
                headers[key] = text if previous is None else f"{previous}, {text}"
            self._headers = headers
        return headers

    # -- disconnect -------------------------------------------------------------------

    @property
    def disconnected(self) -> trio.Event:
        """Set when the client closes the connection while a long-poll handler runs.

        The connection also cancels the handler at that moment; the event lets code in
        other tasks (a waiter registry, say) notice too.
        """
        if self._disconnected is None:
            self._disconnected = trio.Event()
        return self._disconnected

    # -- query string -----------------------------------------------------------------

    @property
    def query(self) -> dict[str, list[str]]:
        """Every query parameter with all its values, in order (`+` decodes to a space)."""
        if self._query is None:
            query: dict[str, list[str]] = {}
            raw = self.query_string
            if "%" in raw or "+" in raw:
                pairs = parse_qsl(raw, keep_blank_values=True)
            else:
                # Nothing to decode: the same result as parse_qsl, five times faster.
                pairs = [p.partition("=")[::2] for p in raw.split("&") if p]
            for key, value in pairs:
                query.setdefault(key, []).append(value)
            self._query = query
        return self._query

    def query_str(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`, or `default` when absent."""
        values = self.query.get(name)
        return values[0] if values else default

    def query_list(self, name: str) -> list[str]:
        """All values of `name`; comma-separated values are split (`a,b` and `a&a` alike)."""
        out: list[str] = []
        for value in self.query.get(name, ()):
            out.extend(v for v in value.split(",") if v)
        return out

    def query_bool(self, name: str, default: bool) -> bool:
        """Query parameter `name` as a boolean.

        Accepts true/false in any case (`true`, `True`, `TRUE`), and 1/0, yes/no, on/off
        like Spring's converter. Absent or empty gives `default`.

        Raises:
            QueryParameterError: (400) any other value.
        """
        raw = self.query_str(name)
        if raw is None or raw == "":
            return default
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise QueryParameterError(f"Query parameter '{name}' must be true or false, got {raw!r}")

    def query_int(
        self,
        name: str,
        default: int,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        """Query parameter `name` as an integer.

        Args:
            name: the parameter.
            default: the value when it is absent or empty.
            minimum: smallest accepted value, if any.
            maximum: largest accepted value, if any.

        Raises:
            QueryParameterError: (400) not an integer, or outside [minimum, maximum].
        """
        raw = self.query_str(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            raise QueryParameterError(
                f"Query parameter '{name}' must be an integer, got {raw!r}"
            ) from None
        if minimum is not None and value < minimum:
            raise QueryParameterError(
                f"Query parameter '{name}' must be at least {minimum}, got {value}"
            )
        if maximum is not None and value > maximum:
            raise QueryParameterError(
                f"Query parameter '{name}' must be at most {maximum}, got {value}"
            )
        return value

    # -- body -------------------------------------------------------------------------

    def json(self, type_: type[T]) -> T:
        """Decode the body as JSON into `type_` (a msgspec Struct, list[...], dict...).

        Raises:
            core.errors.DefinitionError: (400, with `validationErrors`) the body is not
                JSON, or does not fit `type_`; the error names the field path.
        """
        return decode(self.body, type_, subject="request body")

    def text(self) -> str:
        """The body as UTF-8 text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")
