"""Podium's HTTP/1.1 layer on trio: routing, requests, responses, errors, docs, metrics.

Rules: handlers are `async def handler(request: Request) -> Response`, registered on a
Router; `serve_http` serves a Router. Nothing here knows about workflows.

How a REST module plugs in::

    router = Router()

    async def get_workflow(request: Request) -> Response:
        workflow_id = request.path_params["workflowId"]
        include_tasks = request.query_bool("includeTasks", True)   # 400 on garbage
        return Response.json(await engine.get(workflow_id, include_tasks))

    async def start_workflow(request: Request) -> Response:
        body = request.json(StartWorkflowRequest)   # 400 + validationErrors on bad bodies
        return Response.text(await engine.start(body))

    async def batch_poll(request: Request) -> Response:   # cancelled if the worker leaves
        ...

    router.add("GET", "/api/workflow/{workflowId}", get_workflow, response=Workflow,
               query=[QueryParam("includeTasks", bool, True)], tags=["workflow-resource"])
    router.add("POST", "/api/workflow", start_workflow, body=StartWorkflowRequest,
               response=str)
    router.add("GET", "/api/tasks/poll/batch/{tasktype}", batch_poll, long_poll=True)
    add_openapi_routes(router, title="Podium", version=__version__)   # last
    add_metrics_route(router, registry)
    await nursery.start(partial(serve_http, router, host, port,
                                metrics=HttpMetrics(registry)))

Raise `core.errors` exceptions (NotFound, Conflict, BadRequest, DefinitionError...) for
client mistakes; they become Conductor's error body with their status. Anything else
is a logged 500.
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
