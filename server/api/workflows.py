"""`/api/workflow`: start, read and operate on workflow executions (spec 1.2).

Rules:
- Starts answer the new id as `text/plain` (the SDK sends `Accept: text/plain`).
  `POST /workflow/{name}` takes the input map as the body; an empty body is `{}` and an
  explicit `null` is a 400 (Conductor: "NULL input passed when starting workflow").
- Status codes are Conductor's: restart, retry and resetcallbacks answer 204; other
  mutations 200 with an empty body. Illegal state changes are 409 (Conductor answers
  500 for some of them; see docs/compatibility.md), unknown ids 404.
- Booleans in the query are read case-insensitively (`true` from GETs, `True` from the
  SDK's POST/PUT/DELETE); a DELETE's `{}` body is ignored.
- Bulk operations, search and start-and-wait live in workflow_ops.py.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import codec
from core.enums import WORKFLOW_TERMINAL, TaskStatus
from core.errors import BadRequest
from core.models import (
    RerunWorkflowRequest,
    SearchResult,
    SkipTaskRequest,
    StartWorkflowRequest,
    Task,
    Workflow,
    WorkflowDef,
    WorkflowStatusResponse,
)
from server.api import wire
from server.api.context import (
    INT32_MAX,
    INT64_MAX,
    ApiContext,
    check_version,
    optional_int,
    path_str,
)
from server.http import QueryParam, Request, Response, Router

TAGS = ("workflow",)
# A JSON object, or null (which some endpoints reject with their own message).
_OPTIONAL_MAP: Any = dict[str, Any] | None
_START_PARAMS = (
    QueryParam("version", int, None, "absent: the latest version"),
    QueryParam("correlationId", str, None),
    QueryParam("priority", int, 0, "0..99"),
)


def _input_map(request: Request) -> dict[str, Any]:
    """The body of `POST /workflow/{name}`: a JSON object (empty body = {})."""
    if not request.body.strip():
        return {}
    value: dict[str, Any] | None = codec.decode(
        request.body, _OPTIONAL_MAP, subject="workflow input"
    )
    if value is None:
        raise BadRequest("NULL input passed when starting workflow: send {} for no input")
    return value


class CorrelationIdsSearchRequest(msgspec.Struct, rename="camel", kw_only=True):
    """Body of `POST /workflow/correlated/batch` (the SDK's batch correlation search)."""

    correlation_ids: list[str] = []
    workflow_names: list[str] = []


def check_start(start: StartWorkflowRequest) -> None:
    """Range checks the model cannot express: versions are 32-bit, as in Conductor.

    Raises:
        DefinitionError: (400) naming the field.
    """
    check_version(start.version, "version")
    if isinstance(start.workflow_def, WorkflowDef):
        check_version(start.workflow_def.version, "workflowDef.version")


def _statuses(request: Request) -> set[TaskStatus]:
    wanted: set[TaskStatus] = set()
    for raw in request.query_list("status"):
        try:
            wanted.add(TaskStatus(raw.strip().upper()))
        except ValueError:
            allowed = ", ".join(s.value for s in TaskStatus)
            raise BadRequest(f"status: {raw!r} is not one of {allowed}") from None
    return wanted


def register(router: Router, ctx: ApiContext) -> None:
    """Add the workflow routes to `router`."""
    engine = ctx.engine
    starts = ctx.metrics.workflow_starts

    async def start_workflow(request: Request) -> Response:
        start = request.json(StartWorkflowRequest)
        check_start(start)
        workflow_id = await engine.start_workflow(start)
        starts.labels(start.name or "ephemeral").inc()
        return wire.text(workflow_id)

    async def start_workflow_by_name(request: Request) -> Response:
        name = path_str(request, "name")
        start = StartWorkflowRequest(
            name=name,
            version=optional_int(request, "version"),
            correlation_id=request.query_str("correlationId"),
            priority=request.query_int("priority", 0, minimum=0, maximum=99),
            input=_input_map(request),
        )
        workflow_id = await engine.start_workflow(start)
        starts.labels(name).inc()
        return wire.text(workflow_id)

    async def get_workflow(request: Request) -> Response:
        workflow = await engine.get_workflow(
            path_str(request, "workflowId"), request.query_bool("includeTasks", True)
        )
        return wire.workflow_response(workflow)

    async def get_status(request: Request) -> Response:
        workflow = await engine.get_workflow(path_str(request, "workflowId"), False)
        status = WorkflowStatusResponse(
            workflow_id=workflow.workflow_id,
            status=workflow.status,
            correlation_id=workflow.correlation_id,
        )
        if request.query_bool("includeOutput", False):
            status.output = workflow.output
        if request.query_bool("includeVariables", False):
            status.variables = workflow.variables
        return wire.json(status)

    async def get_tasks(request: Request) -> Response:
        workflow = await engine.get_workflow(path_str(request, "workflowId"), True)
        start = request.query_int("start", 0, minimum=0, maximum=INT64_MAX)
        count = request.query_int("count", 15, minimum=0, maximum=INT64_MAX)
        wanted = _statuses(request)
        tasks = [t for t in workflow.tasks if not wanted or t.status in wanted]
        page = tasks[start : start + count]
        return wire.json(
            {"totalHits": len(tasks), "results": [wire.task_builtins(t) for t in page]}
        )

    async def correlated(request: Request) -> Response:
        found = await engine.correlated(
            path_str(request, "name"),
            path_str(request, "correlationId"),
            include_closed=request.query_bool("includeClosed", False),
            include_tasks=request.query_bool("includeTasks", False),
        )
        return wire.workflows_response(found)

    async def correlated_many(request: Request) -> Response:
        name = path_str(request, "name")
        ids = request.json(list[str])
        include_closed = request.query_bool("includeClosed", False)
        include_tasks = request.query_bool("includeTasks", False)
        out: dict[str, list[dict[str, Any]]] = {}
        for correlation_id in ids:
            found = await engine.correlated(
                name, correlation_id, include_closed=include_closed, include_tasks=include_tasks
            )
            out[correlation_id] = [wire.workflow_builtins(w) for w in found]
        return wire.json(out)

    async def correlated_batch(request: Request) -> Response:
        search = request.json(CorrelationIdsSearchRequest)
        include_closed = request.query_bool("includeClosed", False)
        include_tasks = request.query_bool("includeTasks", False)
        out: dict[str, list[dict[str, Any]]] = {}
        for correlation_id in search.correlation_ids:
            found: list[dict[str, Any]] = []
            for name in search.workflow_names:
                runs = await engine.correlated(
                    name,
                    correlation_id,
                    include_closed=include_closed,
                    include_tasks=include_tasks,
                )
                found.extend(wire.workflow_builtins(w) for w in runs)
            out[correlation_id] = found
        return wire.json(out)

    async def running(request: Request) -> Response:
        name = path_str(request, "name")
        version = request.query_int("version", 1, minimum=-INT32_MAX - 1, maximum=INT32_MAX)
        start_time = request.query_int("startTime", 0, minimum=0, maximum=INT64_MAX)
        end_time = request.query_int("endTime", 0, minimum=0, maximum=INT64_MAX)
        ids = await engine.running_ids(name, version)
        if start_time and end_time:
            # Conductor's time-range form: running workflows started in [start, end].
            found = await engine.get_workflows(ids, include_tasks=False)
            ids = [w.workflow_id for w in found if start_time <= w.create_time <= end_time]
        return wire.json(ids)

    async def pause(request: Request) -> Response:
        await engine.pause(path_str(request, "workflowId"))
        return Response.empty()

    async def resume(request: Request) -> Response:
        await engine.resume(path_str(request, "workflowId"))
        return Response.empty()

    async def terminate(request: Request) -> Response:
        await engine.terminate(path_str(request, "workflowId"), request.query_str("reason"))
        return Response.empty()

    async def restart(request: Request) -> Response:
        await engine.restart(
            path_str(request, "workflowId"),
            use_latest_definitions=request.query_bool("useLatestDefinitions", False),
        )
        return Response.no_content()

    async def retry(request: Request) -> Response:
        await engine.retry(
            path_str(request, "workflowId"),
            resume_subworkflow_tasks=request.query_bool("resumeSubworkflowTasks", False),
        )
        return Response.no_content()

    async def rerun(request: Request) -> Response:
        workflow_id = path_str(request, "workflowId")
        body = request.json(RerunWorkflowRequest) if request.body.strip() else None
        body = body or RerunWorkflowRequest()
        body.re_run_from_workflow_id = workflow_id
        return wire.text(await engine.rerun(workflow_id, body))

    async def skip_task(request: Request) -> Response:
        # Conductor binds SkipTaskRequest from query/form parameters, not the body; a
        # JSON body is accepted as well, since clients (and the SDK) send one.
        skip = SkipTaskRequest()
        if request.body.strip() and request.body.strip() != b"{}":
            skip = request.json(SkipTaskRequest)
        for name, attr in (("taskInput", "task_input"), ("taskOutput", "task_output")):
            raw = request.query_str(name)
            if raw:
                setattr(skip, attr, codec.decode(raw, dict[str, Any], subject=name))
        await engine.skip_task(
            path_str(request, "workflowId"), path_str(request, "taskReferenceName"), skip
        )
        return Response.empty()

    async def reset_callbacks(request: Request) -> Response:
        await engine.reset_callbacks(path_str(request, "workflowId"))
        return Response.no_content()

    async def decide(request: Request) -> Response:
        await engine.decide(path_str(request, "workflowId"))
        return Response.empty()

    async def remove(request: Request) -> Response:
        request.query_bool("archiveWorkflow", True)  # validated; nothing is archived
        await engine.remove(path_str(request, "workflowId"))
        return Response.empty()

    async def terminate_remove(request: Request) -> Response:
        workflow_id = path_str(request, "workflowId")
        request.query_bool("archiveWorkflow", True)
        # Terminating an ended workflow is a 409, but removing it is what was asked.
        workflow = await engine.get_workflow(workflow_id, False)
        if workflow.status not in WORKFLOW_TERMINAL:
            await engine.terminate(workflow_id, request.query_str("reason"))
        await engine.remove(workflow_id)
        return Response.empty()

    base = "/api/workflow"
    wid = f"{base}/{{workflowId}}"
    add = router.add
    add(
        "POST",
        base,
        start_workflow,
        body=StartWorkflowRequest,
        response=str,
        tags=TAGS,
        summary="Start a workflow (registered or inline definition); answers its id",
    )
    add(
        "POST",
        f"{base}/{{name}}",
        start_workflow_by_name,
        body=dict[str, Any],
        response=str,
        tags=TAGS,
        query=_START_PARAMS,
        summary="Start a registered workflow with the body as its input; answers its id",
    )
    add(
        "GET",
        wid,
        get_workflow,
        response=Workflow,
        tags=TAGS,
        query=(QueryParam("includeTasks", bool, True),),
        summary="One workflow execution",
    )
    add(
        "GET",
        f"{wid}/status",
        get_status,
        response=WorkflowStatusResponse,
        tags=TAGS,
        query=(
            QueryParam("includeOutput", bool, False),
            QueryParam("includeVariables", bool, False),
        ),
        summary="A workflow's status",
    )
    add(
        "GET",
        f"{wid}/tasks",
        get_tasks,
        response=SearchResult[Task],
        tags=TAGS,
        query=(
            QueryParam("start", int, 0),
            QueryParam("count", int, 15),
            QueryParam("status", str, None, "repeatable"),
        ),
        summary="A page of a workflow's tasks",
    )
    corr_query = (QueryParam("includeClosed", bool, False), QueryParam("includeTasks", bool, False))
    add(
        "GET",
        f"{base}/{{name}}/correlated/{{correlationId}}",
        correlated,
        response=list[Workflow],
        tags=TAGS,
        query=corr_query,
        summary="Workflows of a name with a correlation id",
    )
    add(
        "POST",
        f"{base}/{{name}}/correlated",
        correlated_many,
        body=list[str],
        response=dict[str, list[Workflow]],
        tags=TAGS,
        query=corr_query,
        summary="Workflows of a name for several correlation ids",
    )
    add(
        "POST",
        f"{base}/correlated/batch",
        correlated_batch,
        body=CorrelationIdsSearchRequest,
        response=dict[str, list[Workflow]],
        tags=TAGS,
        query=corr_query,
        summary="Workflows of several names for several correlation ids",
    )
    add(
        "GET",
        f"{base}/running/{{name}}",
        running,
        response=list[str],
        tags=TAGS,
        query=(
            QueryParam("version", int, 1),
            QueryParam("startTime", int, None),
            QueryParam("endTime", int, None),
        ),
        summary="Ids of running workflows of a name and version",
    )
    add("PUT", f"{wid}/pause", pause, tags=TAGS, summary="Pause a workflow")
    add("PUT", f"{wid}/resume", resume, tags=TAGS, summary="Resume a paused workflow")
    add(
        "DELETE",
        wid,
        terminate,
        tags=TAGS,
        query=(QueryParam("reason", str, None),),
        summary="Terminate a workflow",
    )
    add(
        "POST",
        f"{wid}/restart",
        restart,
        status=204,
        tags=TAGS,
        query=(QueryParam("useLatestDefinitions", bool, False),),
        summary="Restart a finished workflow from the beginning",
    )
    add(
        "POST",
        f"{wid}/retry",
        retry,
        status=204,
        tags=TAGS,
        query=(QueryParam("resumeSubworkflowTasks", bool, False),),
        summary="Retry the failed tasks of a finished workflow",
    )
    add(
        "POST",
        f"{wid}/rerun",
        rerun,
        body=RerunWorkflowRequest,
        response=str,
        tags=TAGS,
        summary="Rerun a finished workflow from the start or from a task",
    )
    add(
        "PUT",
        f"{wid}/skiptask/{{taskReferenceName}}",
        skip_task,
        tags=TAGS,
        query=(
            QueryParam("taskInput", str, None, "JSON object"),
            QueryParam("taskOutput", str, None, "JSON object"),
        ),
        summary="Skip a task that is not scheduled yet",
    )
    add(
        "POST",
        f"{wid}/resetcallbacks",
        reset_callbacks,
        status=204,
        tags=TAGS,
        summary="Make tasks waiting out callbackAfterSeconds pollable now",
    )
    add(
        "PUT",
        f"{base}/decide/{{workflowId}}",
        decide,
        tags=TAGS,
        summary="Run the decider on a workflow now",
    )
    add(
        "DELETE",
        f"{wid}/remove",
        remove,
        tags=TAGS,
        query=(QueryParam("archiveWorkflow", bool, True),),
        summary="Delete a workflow execution",
    )
    add(
        "DELETE",
        f"{wid}/terminate-remove",
        terminate_remove,
        tags=TAGS,
        query=(QueryParam("reason", str, None), QueryParam("archiveWorkflow", bool, True)),
        summary="Terminate (if running) and delete a workflow execution",
    )
