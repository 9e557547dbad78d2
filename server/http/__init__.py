"""Podium's HTTP/1.1 layer on trio: routing, requests, responses, errors, docs, metrics.

Rules: handlers are `async def handler(request: Request) -> Response`, registered on a
Router; `serve_http` serves a Router. Nothing here knows about workflows.
"""

from server.http.config import HttpConfig
from server.http.request import Request
from server.http.response import Response
from server.http.router import QueryParam, Route, Router
from server.http.server import HttpServer, serve_http

__all__ = [
    "HttpConfig",
    "HttpServer",
    "QueryParam",
    "Request",
    "Response",
    "Route",
    "Router",
    "serve_http",
]
