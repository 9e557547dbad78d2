"""`/api/workflow`: bulk operations, search, and start-and-wait (spec 1.2).

Rules:
- Bulk bodies are a JSON list of at most 1000 workflow ids; each id succeeds or fails on
  its own and the answer is a BulkResponse (an unknown id is an entry in
  `bulkErrorResults`, not a 4xx for the whole request).
- Search is served from the store with Conductor's query syntax (core.search): `query`,
  `freeText`, `start`, `size`, `sort=field:ASC|field:DESC`. A malformed query is a 400
  naming the position.
- `POST /workflow/execute/{name}/{version}` starts a workflow and waits (at most
  `waitForSeconds`, capped at 60) until it ends or until a task in `waitUntilTaskRef`
  appears; it answers the workflow's state then, finished or not.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import trio

from core import codec
from core.enums import WORKFLOW_TERMINAL
from core.errors import BadRequest, PodiumError
from core.models import (
    BulkResponse,
    SearchResult,
    StartWorkflowRequest,
    Workflow,
    WorkflowSummary,
)
from core.search import And, Cond, Or, parse_query
from core.store import SearchRequest
from server.api import wire
from server.api.context import INT64_MAX, ApiContext, path_int, path_str
from server.api.workflows import check_start
from server.http import QueryParam, Request, Response, Router

TAGS = ("workflow",)
MAX_BULK = 1000
MAX_WAIT_SECONDS = 60
# How often start-and-wait looks at the workflow again.
EXECUTE_POLL_SECONDS = 0.05

SEARCH_QUERY = (
    QueryParam("start", int, 0),
    QueryParam("size", int, 100),
    QueryParam("sort", str, None, "field:ASC|field2:DESC"),
    QueryParam("freeText", str, "*"),
    QueryParam("query", str, None, "e.g. workflowType = 'x' AND status IN (FAILED)"),
)


class WorkflowRun(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """Start-and-wait's answer: the SDK's WorkflowRun fields plus Conductor's
    SignalResponse fields (`responseType`, `targetWorkflow*`)."""

    workflow_id: str
    request_id: str
    status: str
    response_type: str = "TARGET_WORKFLOW"
    target_workflow_id: str = ""
    target_workflow_status: str = ""
    correlation_id: str | None = None
    create_time: int = 0
    update_time: int = 0
    created_by: str | None = None
    priority: int = 0
    input: dict[str, Any] = {}
    output: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    reason_for_incompletion: str | None = None
    tasks: list[Any] = []


def search_request(request: Request) -> SearchRequest:
    """Conductor's search parameters from the query string."""
    return SearchRequest(
        query=request.query_str("query") or "",
        free_text=request.query_str("freeText") or "*",
        start=request.query_int("start", 0, minimum=0, maximum=INT64_MAX),
        size=request.query_int("size", 100, minimum=0, maximum=10_000),
        sort=request.query_str("sort") or "",
    )


def check_query_numbers(query: str) -> None:
    """Numbers in a search query must fit the store's 64-bit columns.

    Raises:
        BadRequest: (400) a number out of range, or a malformed query.
    """
    pending = [parse_query(query)]
    while pending:
        node = pending.pop()
        if isinstance(node, Cond):
            for value in node.values:
                if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
                    raise BadRequest(
                        f"query: {node.field.name} value {value} is out of range "
                        "(a 64-bit integer, epoch milliseconds for times)"
                    )
        elif isinstance(node, And | Or):
            pending.extend((node.left, node.right))


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def register(router: Router, ctx: ApiContext) -> None:
    """Add bulk, search and execute routes to `router`."""
    engine = ctx.engine

    def bulk(
        operation: Callable[[Request, str], Awaitable[None]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            ids = request.json(list[str])
            if len(ids) > MAX_BULK:
                raise BadRequest(
                    f"Cannot process more than {MAX_BULK} workflows; got {len(ids)}. "
                    "Split the list into smaller requests."
                )
            result = BulkResponse()
            for workflow_id in ids:
                try:
                    await operation(request, workflow_id)
                except PodiumError as exc:
                    result.bulk_error_results[workflow_id] = exc.message
                else:
                    result.bulk_successful_results.append(workflow_id)
            return wire.json(result)

        handler.__name__ = f"bulk_{operation.__name__}"
        return handler

    async def pause(request: Request, workflow_id: str) -> None:
        await engine.pause(workflow_id)

    async def resume(request: Request, workflow_id: str) -> None:
        await engine.resume(workflow_id)

    async def restart(request: Request, workflow_id: str) -> None:
        latest = request.query_bool("useLatestDefinitions", False)
        await engine.restart(workflow_id, use_latest_definitions=latest)

    async def retry(request: Request, workflow_id: str) -> None:
        await engine.retry(workflow_id)

    async def terminate(request: Request, workflow_id: str) -> None:
        await engine.terminate(workflow_id, request.query_str("reason"))

    async def remove(request: Request, workflow_id: str) -> None:
        await engine.remove(workflow_id)

    async def terminate_remove(request: Request, workflow_id: str) -> None:
        workflow = await engine.get_workflow(workflow_id, False)
        if workflow.status not in WORKFLOW_TERMINAL:
            await engine.terminate(workflow_id, request.query_str("reason"))
        await engine.remove(workflow_id)

    async def bulk_search(request: Request) -> Response:
        ids = request.json(list[str])
        if len(ids) > MAX_BULK:
            raise BadRequest(f"Cannot process more than {MAX_BULK} workflows; got {len(ids)}")
        found = await engine.get_workflows(ids, request.query_bool("includeTasks", True))
        by_id = {w.workflow_id: w for w in found}
        errors = {i: f"No such workflow found by id: {i}" for i in ids if i not in by_id}
        return wire.json(
            {
                "bulkErrorResults": errors,
                "bulkSuccessfulResults": [wire.workflow_builtins(w) for w in found],
                "message": "Bulk Request has been processed.",
            }
        )

    async def search(request: Request) -> Response:
        query = search_request(request)
        check_query_numbers(query.query)
        return wire.json(await engine.search(query))

    async def search_v2(request: Request) -> Response:
        query = search_request(request)
        check_query_numbers(query.query)
        result = await engine.search_v2(query)
        return wire.json(
            {
                "totalHits": result.total_hits,
                "results": [wire.workflow_builtins(w) for w in result.results],
            }
        )

    async def execute(request: Request) -> Response:
        name = path_str(request, "name")
        # The path names the workflow, so the body's `name` is optional here; without a
        # version in the path, the body's (or the latest) is used.
        raw = request.json(dict[str, Any]) if request.body.strip() else {}
        raw["name"] = name
        if "version" in request.path_params:
            raw["version"] = path_int(request, "version")
        start = codec.convert(raw, StartWorkflowRequest, subject="request body")
        check_start(start)
        request_id = request.query_str("requestId") or str(uuid.uuid4())
        targets = set(request.query_list("waitUntilTaskRef"))
        wait = request.query_int("waitForSeconds", 10, minimum=0, maximum=MAX_WAIT_SECONDS)
        workflow_id = await engine.start_workflow(start)
        ctx.metrics.workflow_starts.labels(name).inc()
        workflow = await engine.get_workflow(workflow_id, True)
        with trio.move_on_after(wait):
            while workflow.status not in WORKFLOW_TERMINAL and not any(
                t.reference_task_name in targets for t in workflow.tasks
            ):
                await trio.sleep(EXECUTE_POLL_SECONDS)
                workflow = await engine.get_workflow(workflow_id, True)
        return wire.json(_run(workflow, request_id))

    def _run(workflow: Workflow, request_id: str) -> WorkflowRun:
        return WorkflowRun(
            workflow_id=workflow.workflow_id,
            request_id=request_id,
            status=workflow.status.value,
            target_workflow_id=workflow.workflow_id,
            target_workflow_status=workflow.status.value,
            correlation_id=_opt_str(workflow.correlation_id),
            create_time=workflow.create_time,
            update_time=workflow.update_time,
            created_by=_opt_str(workflow.created_by),
            priority=workflow.priority,
            input=workflow.input,
            output=workflow.output,
            variables=workflow.variables,
            reason_for_incompletion=_opt_str(workflow.reason_for_incompletion),
            tasks=[wire.task_builtins(t) for t in workflow.tasks],
        )

    base = "/api/workflow/bulk"
    add = router.add
    ids_body: dict[str, Any] = {"body": list[str], "response": BulkResponse, "tags": TAGS}
    add("PUT", f"{base}/pause", bulk(pause), summary="Pause workflows", **ids_body)
    add("PUT", f"{base}/resume", bulk(resume), summary="Resume workflows", **ids_body)
    add(
        "POST",
        f"{base}/restart",
        bulk(restart),
        summary="Restart workflows",
        query=(QueryParam("useLatestDefinitions", bool, False),),
        **ids_body,
    )
    add("POST", f"{base}/retry", bulk(retry), summary="Retry workflows", **ids_body)
    add(
        "POST",
        f"{base}/terminate",
        bulk(terminate),
        summary="Terminate workflows",
        query=(QueryParam("reason", str, None),),
        **ids_body,
    )
    add(
        "DELETE",
        f"{base}/remove",
        bulk(remove),
        summary="Delete workflows",
        query=(QueryParam("archiveWorkflow", bool, True),),
        **ids_body,
    )
    add(
        "DELETE",
        f"{base}/terminate-remove",
        bulk(terminate_remove),
        summary="Terminate and delete workflows",
        query=(QueryParam("reason", str, None), QueryParam("archiveWorkflow", bool, True)),
        **ids_body,
    )
    add(
        "POST",
        f"{base}/search",
        bulk_search,
        body=list[str],
        tags=TAGS,
        query=(QueryParam("includeTasks", bool, True),),
        summary="Fetch workflows by id",
    )
    add(
        "GET",
        "/api/workflow/search",
        search,
        response=SearchResult[WorkflowSummary],
        tags=TAGS,
        query=SEARCH_QUERY,
        summary="Search workflows (summaries)",
    )
    add(
        "GET",
        "/api/workflow/search-v2",
        search_v2,
        response=SearchResult[Workflow],
        tags=TAGS,
        query=SEARCH_QUERY,
        summary="Search workflows (full executions)",
    )
    execute_q = (
        QueryParam("requestId", str, None),
        QueryParam("waitUntilTaskRef", str, None),
        QueryParam("waitForSeconds", int, 10),
    )
    add(
        "POST",
        "/api/workflow/execute/{name}/{version}",
        execute,
        body=StartWorkflowRequest,
        response=WorkflowRun,
        tags=TAGS,
        query=execute_q,
        summary="Start a workflow and wait for it to finish (or reach a task)",
    )
    add(
        "POST",
        "/api/workflow/execute/{name}",
        execute,
        body=StartWorkflowRequest,
        response=WorkflowRun,
        tags=TAGS,
        query=execute_q,
        summary="Start the latest (or the body's) version of a workflow and wait",
    )
