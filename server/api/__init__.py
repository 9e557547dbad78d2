"""Conductor's REST API on Podium's HTTP layer: one module per resource.

Rules: `build_router` registers every route of every module on one Router, then the
OpenAPI document (at `/api-docs` and `/openapi.json`), which describes whatever was
registered before it. Modules talk to the engine only (server.engine.Engine) and turn
its models into Conductor's JSON through server.api.wire.

Safety net: an integer too large for the store's 64-bit columns (a definition's timing
field of 10**20 seconds, say) raises OverflowError where the store binds it, before
anything is committed. Every handler turns that into a 400 instead of a 500; the
request's own numbers are range-checked earlier, where they are read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core.errors import BadRequest
from server.api import admin, events, metadata, tasks, workflow_ops, workflows
from server.api.context import ApiContext, ApiMetrics
from server.http import Request, Response, Router
from server.http.openapi import add_openapi_routes

__all__ = ["ApiContext", "ApiMetrics", "build_router"]

DESCRIPTION = (
    "Netflix Conductor's REST API (metadata, workflows, tasks, event handlers, admin) "
    "served by Podium. Errors use Conductor's body: "
    '{"status", "message", "instance", "retryable"[, "validationErrors"]}.'
)


def build_router(ctx: ApiContext) -> Router:
    """Every API route, bound to `ctx`.

    Args:
        ctx: the engine, metrics and facts the handlers use.

    Returns:
        A Router ready for `serve_http`.
    """
    router = Router()
    metadata.register(router, ctx)
    # Bulk/search/execute first: their literal paths read better first in the docs.
    workflow_ops.register(router, ctx)
    workflows.register(router, ctx)
    tasks.register(router, ctx)
    events.register(router, ctx)
    admin.register(router, ctx)
    add_openapi_routes(router, title="Podium", version=ctx.version, description=DESCRIPTION)
    for route in router.routes:
        route.handler = _overflow_is_a_bad_request(route.handler)
    return router


def _overflow_is_a_bad_request(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except OverflowError as exc:
            raise BadRequest(
                "A number in this request, or in the definition it runs, is too large to "
                f"store ({exc}); use values that fit a 64-bit integer (milliseconds) or "
                "32-bit integer (seconds, counts)"
            ) from exc

    guarded.__name__ = getattr(handler, "__name__", "handler")
    return guarded
