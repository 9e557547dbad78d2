"""`/api/tasks`: worker polling and updates, task lookups, logs, queues (spec 1.3).

Rules:
- Single poll answers 204 (empty body) when nothing is available; batch poll answers
  200 `[]`. Both long-poll: batch `timeout` (ms) waits for the first task, above 5000 is a
  400; single poll waits Conductor's 100 ms. Polls are `long_poll` routes, so a client
  that hangs up cancels the wait (the engine never loses a claimed task).
- `POST /tasks` answers the task id as text/plain; `POST /tasks/update-v2` answers the
  next task of the same type (200) or 204. Updates to finished tasks are ignored, 200.
- A task log body is the raw line (the SDK sends JSON-escaped text without quotes); a
  body that is a JSON string literal is unquoted first.
- Metrics: tasks handed out and poll latency per task type, updates per status.
- Task search lives in task_search.py (a bounded scan: Podium keeps no task index).
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio

from core import codec
from core.errors import BadRequest, DefinitionError, FieldError, NotFound
from core.models import PollData, SearchResult, Task, TaskExecLog, TaskResult, TaskSummary, Workflow
from core.store import SearchRequest
from server.api import wire
from server.api.context import INT32_MAX, ApiContext, path_str
from server.api.task_search import MAX_SCAN_WORKFLOWS, search_tasks, to_task_summary
from server.api.workflow_ops import SEARCH_QUERY, search_request
from server.http import QueryParam, Request, Response, Router

TAGS = ("tasks",)
# A JSON object, or null (read as {}).
_OPTIONAL_MAP: Any = dict[str, Any] | None
# Conductor's single poll waits this long on the queue before answering 204.
SINGLE_POLL_WAIT_MS = 100
# Requeue walks running workflows in pages of this size.
REQUEUE_PAGE = 200


def _output_map(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    value = codec.decode(request.body, _OPTIONAL_MAP, subject="task output")
    return value or {}


def _log_line(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == '"' and stripped[-1] == '"':
        try:
            decoded = msgspec.json.decode(stripped)
        except msgspec.DecodeError:
            return text
        if isinstance(decoded, str):
            return decoded
    return text


def register(router: Router, ctx: ApiContext) -> None:
    """Add the task routes to `router`."""
    engine = ctx.engine
    metrics = ctx.metrics

    async def _poll(request: Request, task_type: str, count: int, timeout_ms: int) -> list[Task]:
        started = trio.current_time()
        tasks = await engine.poll(
            task_type,
            worker_id=request.query_str("workerid"),
            domain=request.query_str("domain") or None,
            count=count,
            timeout_ms=timeout_ms,
        )
        metrics.poll_seconds.labels(task_type).observe(trio.current_time() - started)
        if tasks:
            metrics.tasks_polled.labels(task_type).inc(len(tasks))
        return tasks

    async def poll(request: Request) -> Response:
        tasks = await _poll(request, path_str(request, "tasktype"), 1, SINGLE_POLL_WAIT_MS)
        return wire.task_response(tasks[0]) if tasks else Response.no_content()

    async def batch_poll(request: Request) -> Response:
        count = request.query_int("count", 1)
        timeout_ms = request.query_int("timeout", 100)
        tasks = await _poll(request, path_str(request, "tasktype"), count, timeout_ms)
        return wire.tasks_response(tasks)

    def _check_result(result: TaskResult) -> None:
        delay = result.callback_after_seconds or 0
        if not 0 <= delay <= INT32_MAX:
            raise DefinitionError(
                [
                    FieldError(
                        "callbackAfterSeconds",
                        f"must be between 0 and {INT32_MAX} seconds, got {delay}",
                        delay,
                    )
                ],
                subject="task result",
            )

    def _count_update(result: TaskResult) -> None:
        status = result.status
        metrics.task_updates.labels(status.value if status else "UNSET").inc()

    async def update_task(request: Request) -> Response:
        result = request.json(TaskResult)
        _check_result(result)
        task_id = await engine.update_task(result)
        _count_update(result)
        return wire.text(task_id)

    async def update_task_v2(request: Request) -> Response:
        result = request.json(TaskResult)
        _check_result(result)
        next_task = await engine.update_task_v2(result)
        _count_update(result)
        if next_task is None:
            return Response.no_content()
        metrics.tasks_polled.labels(next_task.task_type).inc()
        return wire.task_response(next_task)

    async def update_by_ref(request: Request) -> Response:
        task_id = await engine.update_task_by_ref(
            path_str(request, "workflowId"),
            path_str(request, "taskRefName"),
            path_str(request, "status"),
            _output_map(request),
            request.query_str("workerid"),
        )
        return wire.text(task_id or "")

    async def update_by_ref_sync(request: Request) -> Response:
        workflow_id = path_str(request, "workflowId")
        ref = path_str(request, "taskRefName")
        task_id = await engine.update_task_by_ref(
            workflow_id,
            ref,
            path_str(request, "status"),
            _output_map(request),
            request.query_str("workerid"),
        )
        if task_id is None:
            raise NotFound(f"No pending task with reference name {ref} in workflow {workflow_id}")
        return wire.workflow_response(await engine.get_workflow(workflow_id, True))

    async def signal(request: Request) -> Response:
        task = await engine.signal(
            path_str(request, "workflowId"), path_str(request, "status"), _output_map(request)
        )
        return wire.text(task.task_id if task else "")

    async def signal_sync(request: Request) -> Response:
        workflow_id = path_str(request, "workflowId")
        task = await engine.signal(workflow_id, path_str(request, "status"), _output_map(request))
        if task is None:
            raise NotFound(f"No pending WAIT or HUMAN task in workflow {workflow_id}")
        return wire.workflow_response(await engine.get_workflow(workflow_id, True))

    async def get_task(request: Request) -> Response:
        return wire.task_response(await engine.get_task(path_str(request, "taskId")))

    async def add_log(request: Request) -> Response:
        task_id = path_str(request, "taskId")
        await engine.get_task(task_id)  # 404 for an unknown task, as Conductor
        await engine.add_task_log(task_id, _log_line(request.body))
        return Response.empty()

    async def get_logs(request: Request) -> Response:
        return wire.json(await engine.get_task_logs(path_str(request, "taskId")))

    async def ack(request: Request) -> Response:
        # Removed from Conductor in 2021 (polls ack themselves); kept for 2.x clients.
        return wire.text("true")

    async def queue_sizes(request: Request) -> Response:
        types = request.query_list("taskType")
        return wire.json({t: await engine.queue_size(t) for t in types})

    async def queue_size(request: Request) -> Response:
        task_type = request.query_str("taskType")
        if not task_type:
            raise BadRequest("taskType: required, e.g. ?taskType=encode")
        return wire.json(await engine.queue_size(task_type, request.query_str("domain") or None))

    async def queue_all(request: Request) -> Response:
        return wire.json(await engine.queue_sizes())

    async def queue_all_verbose(request: Request) -> Response:
        sizes = await engine.queue_sizes()
        return wire.json({q: {"a": {"size": n, "uacked": 0}} for q, n in sizes.items()})

    async def poll_data(request: Request) -> Response:
        task_type = request.query_str("taskType")
        if not task_type:
            raise BadRequest("taskType: required, e.g. ?taskType=encode")
        return wire.json(await engine.poll_data(task_type))

    async def poll_data_all(request: Request) -> Response:
        return wire.json(await engine.poll_data(None))

    async def requeue(request: Request) -> Response:
        # Podium's messages are written with the commit that schedules a task, so nothing
        # is normally missing; this repairs running workflows that hold a SCHEDULED task
        # of this type and answers how many were repaired.
        task_type = path_str(request, "taskType")
        repaired = 0
        start = 0
        while True:
            page = await engine.search_v2(
                SearchRequest(query="status IN (RUNNING)", start=start, size=REQUEUE_PAGE)
            )
            for workflow in page.results:
                if any(
                    t.task_type == task_type and t.status.value == "SCHEDULED"
                    for t in workflow.tasks
                ) and await engine.verify_and_repair(workflow.workflow_id):
                    repaired += 1
            start += REQUEUE_PAGE
            if start >= page.total_hits or not page.results:
                break
        return wire.text(str(repaired))

    async def search(request: Request) -> Response:
        total, found = await search_tasks(engine, search_request(request))
        return wire.json({"totalHits": total, "results": [to_task_summary(t) for t in found]})

    async def search_v2(request: Request) -> Response:
        total, found = await search_tasks(engine, search_request(request))
        return wire.json({"totalHits": total, "results": [wire.task_builtins(t) for t in found]})

    base = "/api/tasks"
    add = router.add
    search_doc = (
        f"Search the tasks of the {MAX_SCAN_WORKFLOWS} most recent workflows "
        "(query: field =|!=|>|< value, field IN (...), joined by AND)"
    )
    add(
        "GET",
        f"{base}/search",
        search,
        response=SearchResult[TaskSummary],
        tags=TAGS,
        query=SEARCH_QUERY,
        summary=search_doc,
    )
    add(
        "GET",
        f"{base}/search-v2",
        search_v2,
        response=SearchResult[Task],
        tags=TAGS,
        query=SEARCH_QUERY,
        summary=search_doc,
    )
    worker_q = (QueryParam("workerid", str, None), QueryParam("domain", str, None))

    def _may_wait(request: Request) -> bool:
        # Only a poll that can wait needs the disconnect watcher; `timeout=0` (or a
        # malformed value, answered 400 by the handler) returns at once.
        return request.query_str("timeout", "100") not in ("0", "")

    add(
        "GET",
        f"{base}/poll/{{tasktype}}",
        poll,
        long_poll=True,
        response=Task,
        tags=TAGS,
        query=worker_q,
        summary="Poll one task (204 when none)",
    )
    add(
        "GET",
        f"{base}/poll/batch/{{tasktype}}",
        batch_poll,
        long_poll=_may_wait,
        response=list[Task],
        tags=TAGS,
        query=(
            *worker_q,
            QueryParam("count", int, 1),
            QueryParam("timeout", int, 100, "long-poll wait in ms, at most 5000"),
        ),
        summary="Poll up to `count` tasks, waiting up to `timeout` ms for the first",
    )
    add(
        "POST",
        base,
        update_task,
        body=TaskResult,
        response=str,
        tags=TAGS,
        summary="Report a task result; answers the task id",
    )
    add(
        "POST",
        f"{base}/update-v2",
        update_task_v2,
        body=TaskResult,
        response=Task,
        tags=TAGS,
        summary="Report a task result; answers the next task of the same type, or 204",
    )
    ref_path = f"{base}/{{workflowId}}/{{taskRefName}}/{{status}}"
    add(
        "POST",
        ref_path,
        update_by_ref,
        body=dict[str, Any],
        response=str,
        tags=TAGS,
        query=(QueryParam("workerid", str, None),),
        summary="Update the pending task with a reference name; answers its id",
    )
    add(
        "POST",
        f"{ref_path}/sync",
        update_by_ref_sync,
        body=dict[str, Any],
        response=Workflow,
        tags=TAGS,
        query=(QueryParam("workerid", str, None),),
        summary="Update the pending task with a reference name; answers the workflow",
    )
    sig = f"{base}/{{workflowId}}/{{status}}/signal"
    add(
        "POST",
        sig,
        signal,
        body=dict[str, Any],
        response=str,
        tags=TAGS,
        summary="Complete the first pending WAIT/HUMAN task",
    )
    add(
        "POST",
        f"{sig}/sync",
        signal_sync,
        body=dict[str, Any],
        response=Workflow,
        tags=TAGS,
        summary="Complete the first pending WAIT/HUMAN task; answers the workflow",
    )
    add("GET", f"{base}/{{taskId}}", get_task, response=Task, tags=TAGS, summary="One task")
    add(
        "POST",
        f"{base}/{{taskId}}/log",
        add_log,
        body=str,
        tags=TAGS,
        summary="Append a log line (the raw body) to a task",
    )
    add(
        "GET",
        f"{base}/{{taskId}}/log",
        get_logs,
        response=list[TaskExecLog],
        tags=TAGS,
        summary="A task's log lines",
    )
    add(
        "POST",
        f"{base}/{{taskId}}/ack",
        ack,
        response=str,
        tags=TAGS,
        summary="Legacy acknowledgement (always true: polls acknowledge)",
    )
    add(
        "GET",
        f"{base}/queue/sizes",
        queue_sizes,
        response=dict[str, int],
        tags=TAGS,
        query=(QueryParam("taskType", str, None, "repeatable"),),
        summary="Queue size per task type",
    )
    add(
        "GET",
        f"{base}/queue/size",
        queue_size,
        response=int,
        tags=TAGS,
        query=(QueryParam("taskType", str, None, required=True), QueryParam("domain", str, None)),
        summary="Queue size of one task type",
    )
    add(
        "GET",
        f"{base}/queue/all",
        queue_all,
        response=dict[str, int],
        tags=TAGS,
        summary="Every task queue's size",
    )
    add(
        "GET",
        f"{base}/queue/all/verbose",
        queue_all_verbose,
        response=dict[str, dict[str, dict[str, int]]],
        tags=TAGS,
        summary="Every task queue's size, per shard",
    )
    add(
        "GET",
        f"{base}/queue/polldata",
        poll_data,
        response=list[PollData],
        tags=TAGS,
        query=(QueryParam("taskType", str, None, required=True),),
        summary="Last polls of a task type",
    )
    add(
        "GET",
        f"{base}/queue/polldata/all",
        poll_data_all,
        response=list[PollData],
        tags=TAGS,
        summary="Last polls of every task type",
    )
    add(
        "POST",
        f"{base}/queue/requeue/{{taskType}}",
        requeue,
        response=str,
        tags=TAGS,
        summary="Re-queue missing messages of pending tasks of a type",
    )
