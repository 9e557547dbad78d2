"""Conductor's REST API on Podium's HTTP layer: one module per resource.

Rules: `build_router` registers every route of every module on one Router, then the
OpenAPI document (at `/api-docs` and `/openapi.json`), which describes whatever was
registered before it. Modules talk to the engine only (server.engine.Engine) and turn
its models into Conductor's JSON through server.api.wire.
"""

from __future__ import annotations

from server.api import admin, events, metadata, tasks, workflow_ops, workflows
from server.api.context import ApiContext, ApiMetrics
from server.http import Router
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
    return router
