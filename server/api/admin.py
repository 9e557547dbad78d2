"""Health, version, metrics, admin and queue-admin endpoints (spec 1.5).

Rules:
- `/health` and `/api/health` answer 200 `{"healthy": true, ...}` when the store answers
  within 2 s, else 503 with `healthy: false`; process supervisors and the test fixture
  wait on it.
- `POST /api/token` answers 404: Podium has no authentication, and a 404 there is how the
  official SDK learns it runs in open mode (sdk-wire 2.6).
- `/metrics` refreshes the store-derived gauges (queue depths, executions by status) at
  scrape time, then renders the registry.
"""

from __future__ import annotations

import msgspec
import trio

import hotpath
from core.enums import WorkflowStatus
from core.errors import NotFound
from core.models import Task
from core.store import SearchRequest
from server.api import wire
from server.api.context import INT64_MAX, ApiContext, path_str
from server.http import QueryParam, Request, Response, Router
from server.http.metrics import CONTENT_TYPE

TAGS = ("admin",)
HEALTH_TIMEOUT_SECONDS = 2.0


class Health(msgspec.Struct, rename="camel", kw_only=True):
    healthy: bool
    health_results: list[dict[str, object]] = []
    suppressed_health_results: list[dict[str, object]] = []


def register(router: Router, ctx: ApiContext) -> None:
    """Add the admin, health, version, token and metrics routes to `router`."""
    engine = ctx.engine
    metrics = ctx.metrics
    metrics.info.labels(ctx.version, hotpath.IMPLEMENTATION).set(1)

    async def health(request: Request) -> Response:
        healthy = False
        with trio.move_on_after(HEALTH_TIMEOUT_SECONDS):
            await engine.store.get_task_def("__podium_health__")
            healthy = True
        body = Health(
            healthy=healthy,
            health_results=[{"name": "store", "healthy": healthy}],
        )
        return wire.json(body, 200 if healthy else 503)

    async def version(request: Request) -> Response:
        return wire.text(ctx.version)

    async def token(request: Request) -> Response:
        raise NotFound("Authentication is not enabled on this server (open mode)")

    async def config(request: Request) -> Response:
        return wire.json(
            {
                "version": ctx.version,
                "store": ctx.store_url,
                "hotpath": hotpath.IMPLEMENTATION,
                **ctx.settings,
            }
        )

    async def pending(request: Request) -> Response:
        tasks = await engine.pending_tasks(
            path_str(request, "tasktype"),
            start=request.query_int("start", 0, minimum=0, maximum=INT64_MAX),
            count=request.query_int("count", 100, minimum=0, maximum=10_000),
        )
        return wire.tasks_response(tasks)

    async def sweep(request: Request) -> Response:
        workflow_id = path_str(request, "workflowId")
        await engine.requeue_sweep(workflow_id)
        return wire.text(workflow_id)

    async def verify(request: Request) -> Response:
        repaired = await engine.verify_and_repair(path_str(request, "workflowId"))
        return wire.text("true" if repaired else "false")

    async def event_queues(request: Request) -> Response:
        handlers = await engine.metadata.event_handlers()
        return wire.json({h.event: "in-process" for h in handlers})

    async def queue_update(request: Request) -> Response:
        body = request.json(dict[str, object]) if request.body.strip() else {}
        await engine.update_task_by_ref(
            path_str(request, "workflowId"),
            path_str(request, "taskRefName"),
            path_str(request, "status"),
            dict(body),
        )
        return Response.empty()

    async def scrape(request: Request) -> Response:
        sizes = await engine.queue_sizes()
        for queue, size in sizes.items():
            metrics.queue_depth.labels(queue).set(size)
        for status in WorkflowStatus:
            found = await engine.store.search(
                SearchRequest(query=f"status = '{status.value}'", size=0)
            )
            metrics.workflows.labels(status.value).set(found[0])
        body = metrics.registry.render().encode("utf-8")
        return Response(200, body, content_type=CONTENT_TYPE)

    add = router.add
    for path in ("/health", "/api/health"):
        add("GET", path, health, response=Health, tags=TAGS, summary="Liveness and store check")
    add("GET", "/api/version", version, response=str, tags=TAGS, summary="Podium's version")
    add("POST", "/api/token", token, tags=TAGS, summary="Always 404: no authentication")
    add("GET", "/metrics", scrape, response=str, tags=TAGS, summary="Prometheus metrics")
    add(
        "GET",
        "/api/admin/config",
        config,
        response=dict[str, str],
        tags=TAGS,
        summary="Server configuration",
    )
    add(
        "GET",
        "/api/admin/task/{tasktype}",
        pending,
        response=list[Task],
        tags=TAGS,
        query=(QueryParam("start", int, 0), QueryParam("count", int, 100)),
        summary="Tasks waiting in a task queue",
    )
    add(
        "POST",
        "/api/admin/sweep/requeue/{workflowId}",
        sweep,
        response=str,
        tags=TAGS,
        summary="Queue a workflow for an immediate sweep",
    )
    add(
        "POST",
        "/api/admin/consistency/verifyAndRepair/{workflowId}",
        verify,
        response=str,
        tags=TAGS,
        summary="Re-queue a running workflow's missing messages",
    )
    add(
        "GET",
        "/api/admin/queues",
        event_queues,
        response=dict[str, str],
        tags=TAGS,
        query=(QueryParam("verbose", bool, False),),
        summary="Event queues with handlers",
    )
    add(
        "POST",
        "/api/queue/update/{workflowId}/{taskRefName}/{status}",
        queue_update,
        body=dict[str, object],
        tags=TAGS,
        summary="Update the pending task with a reference name (queue admin)",
    )
