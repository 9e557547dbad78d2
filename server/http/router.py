"""Method + path-template routing with path parameters.

Rules: a template is a `/`-separated path whose segments are literals or `{name}`
parameters (`/api/workflow/{workflowId}/pause`). A literal segment beats a parameter at
the same position (`/api/workflow/running/{name}` wins over `/api/workflow/{workflowId}`
for `/api/workflow/running/x`), with backtracking, so a literal branch that dead-ends
falls back to the parameter branch. A parameter never matches an empty segment, and
parameter values are percent-decoded after the path is split (so `%2F` stays inside one
value). Unknown path -> 404; known path, wrong method -> 405 with `Allow`. HEAD falls
back to the GET route; OPTIONS on a known path answers 200 with `Allow` unless a route
registers it. A method is chosen before specificity (as Spring does): a DELETE goes to
the parameter template with DELETE even when a literal template matches with only GET.
Registering the same method and template twice is an error at startup. Each route also
carries what the OpenAPI generator needs (body/response types, query parameters,
summary, tags). A parameter path that resolved once is remembered (bounded, forgotten
whenever a route is added), so a worker polling the same path is one dict lookup; each
call still gets its own parameter dict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from server.http.errors import MethodNotAllowed, RouteNotFound
from server.http.request import Request
from server.http.response import Response

Handler = Callable[[Request], Awaitable[Response]]

# Resolved (method, path) pairs remembered per Router; see Router.resolve.
RESOLVED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class QueryParam:
    """A documented query parameter (for OpenAPI; parsing is the handler's job)."""

    name: str
    type: Any = str
    default: Any = None
    description: str = ""
    required: bool = False


@dataclass(slots=True, kw_only=True)
class Route:
    """One registered endpoint.

    Attributes:
        method: upper-case HTTP method.
        template: the path template as registered.
        handler: `async def handler(request) -> Response`.
        long_poll: watch the client while the handler runs; cancel it on disconnect. A
            callable decides per request (a poll with `timeout=0` cannot wait, so it
            skips the watcher task and its nursery).
        body: the request body type (for OpenAPI), or None.
        response: the 2xx response body type (`str` means text/plain), or None.
        status: the documented success status.
        query: documented query parameters.
        summary: one line for OpenAPI.
        tags: OpenAPI tags.
        param_names: the template's parameter names, in path order.
    """

    method: str
    template: str
    handler: Handler
    long_poll: bool | Callable[[Request], bool] = False
    body: Any = None
    response: Any = None
    status: int = 200
    query: tuple[QueryParam, ...] = ()
    summary: str = ""
    tags: tuple[str, ...] = ()
    param_names: tuple[str, ...] = ()


@dataclass(slots=True)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    routes: dict[str, Route] = field(default_factory=dict)


def _split_template(template: str) -> list[str]:
    if not template.startswith("/"):
        raise ValueError(f"route template {template!r} must start with '/'")
    return template.split("/")[1:]


def _is_param(segment: str) -> bool:
    return len(segment) > 2 and segment[0] == "{" and segment[-1] == "}"


class Router:
    """The route table: register endpoints, then `resolve(method, path)` per request."""

    def __init__(self) -> None:
        self._root = _Node()
        # Templates without parameters resolve with one dict lookup.
        self._static: dict[str, dict[str, Route]] = {}
        # Paths with parameters that resolved before (a worker polls the same path over
        # and over): (method, path) -> (route, decoded values). Bounded: emptied when full.
        self._resolved: dict[tuple[str, str], tuple[Route, tuple[str, ...]]] = {}
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        long_poll: bool | Callable[[Request], bool] = False,
        body: Any = None,
        response: Any = None,
        status: int = 200,
        query: tuple[QueryParam, ...] | list[QueryParam] = (),
        summary: str = "",
        tags: tuple[str, ...] | list[str] = (),
    ) -> Route:
        """Register `handler` for `method` on `template`.

        Args:
            method: HTTP method, any case.
            template: path template such as `/api/workflow/{workflowId}`.
            handler: the coroutine function serving the route.
            long_poll: cancel the handler (and set `request.disconnected`) when the client
                goes away; costs a task per request, so only for handlers that wait.
            body: request body type, for OpenAPI.
            response: response body type, for OpenAPI (`str` for text/plain ids).
            status: the documented success status.
            query: documented query parameters.
            summary: one-line description.
            tags: OpenAPI tags.

        Returns:
            The registered Route.

        Raises:
            ValueError: the template is malformed or already registered for this method.
        """
        method = method.upper()
        segments = _split_template(template)
        node = self._root
        names: list[str] = []
        for segment in segments:
            if _is_param(segment):
                name = segment[1:-1]
                if name in names:
                    raise ValueError(f"route {template!r} repeats parameter {name!r}")
                names.append(name)
                if node.param is None:
                    node.param = _Node()
                node = node.param
            elif "{" in segment or "}" in segment:
                raise ValueError(
                    f"route {template!r}: segment {segment!r} must be a literal or a whole {{name}}"
                )
            else:
                node = node.literals.setdefault(segment, _Node())
        if method in node.routes:
            raise ValueError(
                f"route {method} {template} is already registered as "
                f"{method} {node.routes[method].template}"
            )
        route = Route(
            method=method,
            template=template,
            handler=handler,
            long_poll=long_poll,
            body=body,
            response=response,
            status=status,
            query=tuple(query),
            summary=summary,
            tags=tuple(tags),
            param_names=tuple(names),
        )
        node.routes[method] = route
        if not names:
            self._static.setdefault(template, {})[method] = route
        self._resolved.clear()
        self.routes.append(route)
        return route

    def route(self, method: str, template: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator form of `add`: `@router.route("GET", "/api/x")`."""

        def register(handler: Handler) -> Handler:
            self.add(method, template, handler, **options)
            return handler

        return register

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route serving `method` on `path`, and its decoded path parameters.

        Args:
            method: the request method (upper case).
            path: the raw request path, without the query string.

        Raises:
            RouteNotFound: (404) no template matches the path.
            MethodNotAllowed: (405) templates match, but none for this method.
        """
        static = self._static.get(path)
        if static is not None:
            route = static.get(method)
            if route is None and method == "HEAD":
                route = static.get("GET")
            if route is not None:
                return route, {}
        found = self._resolved.get((method, path))
        if found is not None:
            route, known = found
            return route, dict(zip(route.param_names, known, strict=True))
        if not path.startswith("/"):
            raise RouteNotFound(f"No route for {path!r}: paths start with '/'")
        segments = path.split("/")[1:]
        if "%" in path:
            segments = [unquote(s) if "%" in s else s for s in segments]
        values: list[str] = []
        route = _match(self._root, segments, 0, values, method)
        if route is not None:
            if len(self._resolved) >= RESOLVED_CACHE_SIZE:
                self._resolved.clear()
            self._resolved[(method, path)] = (route, tuple(values))
            return route, dict(zip(route.param_names, values, strict=True))
        # No route for this method: the slow walk gathers what the path does allow.
        allowed: list[str] = []
        for node, _ in self._walk(self._root, segments, 0, []):
            for m in node.routes:
                if m not in allowed:
                    allowed.append(m)
        if allowed:
            if "GET" in allowed and "HEAD" not in allowed:
                allowed.append("HEAD")
            if "OPTIONS" not in allowed:
                allowed.append("OPTIONS")
            allowed.sort()
            if method == "OPTIONS":
                return _options_route(path, allowed), {}
            raise MethodNotAllowed(method, path, allowed)
        raise RouteNotFound(f"No route for {method} {path}")

    def _walk(
        self, node: _Node, segments: list[str], index: int, values: list[str]
    ) -> Iterator[tuple[_Node, list[str]]]:
        # Depth first, literal before parameter: yields every matching node in priority
        # order, so the caller takes the first with the method and gathers Allow from all.
        if index == len(segments):
            if node.routes:
                yield node, values
            return
        segment = segments[index]
        child = node.literals.get(segment)
        if child is not None:
            yield from self._walk(child, segments, index + 1, values)
        if node.param is not None and segment:
            yield from self._walk(node.param, segments, index + 1, [*values, segment])


def _match(
    node: _Node, segments: list[str], index: int, values: list[str], method: str
) -> Route | None:
    # The per-request path: literal first, then parameter, backtracking on dead ends;
    # `values` collects parameter values and is trimmed again when a branch fails.
    if index == len(segments):
        route = node.routes.get(method)
        if route is None and method == "HEAD":
            route = node.routes.get("GET")
        return route
    segment = segments[index]
    child = node.literals.get(segment)
    if child is not None:
        route = _match(child, segments, index + 1, values, method)
        if route is not None:
            return route
    param = node.param
    if param is not None and segment:
        values.append(segment)
        route = _match(param, segments, index + 1, values, method)
        if route is not None:
            return route
        values.pop()
    return None


def _options_route(path: str, allowed: list[str]) -> Route:
    # Built per call: OPTIONS is rare, and the answer depends on the path.
    allow = ", ".join(allowed)

    async def options(request: Request) -> Response:
        return Response(200, headers=[("allow", allow)])

    return Route(method="OPTIONS", template=path, handler=options)
