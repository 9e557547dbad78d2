"""Executors for the decider's side-effect actions: HTTP, START_WORKFLOW, SUB_WORKFLOW
children, failure workflows.

Rules:
- RunSystemTask (HTTP, START_WORKFLOW, KAFKA_PUBLISH) runs in the Engine's nursery, never
  in the caller's request, at most once at a time per task id in this process (the
  decider re-offers a SCHEDULED async task on every sweep); its outcome comes back as a
  SystemTaskResult event through Engine.apply, ignored if the task ended meanwhile.
- A background executor never lets an exception escape into the nursery: an unexpected
  error becomes a FAILED result with the error text.
- HTTP uses one shared httpx.AsyncClient (connection reuse; httpx runs on trio) with the
  task's connectionTimeOut / readTimeOut (ms, default 3000).
- Children are created with the decided id, so a replayed StartChildWorkflow finds the
  child already there and does nothing (idempotent); the parent task is moved to
  IN_PROGRESS with `subWorkflowId` only if it is still SCHEDULED.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from core import codec
from core.decisions import (
    NotifyParent,
    RunSystemTask,
    StartChildWorkflow,
    StartFailureWorkflow,
    SystemTaskResult,
)
from core.enums import TASK_TERMINAL, WORKFLOW_TERMINAL, TaskStatus, TaskType
from core.errors import PodiumError
from core.models import UNSET, StartWorkflowRequest, Workflow, WorkflowTask
from hotpath.mapping import java_string
from server.engine.views import find_task

if TYPE_CHECKING:
    from server.engine.engine import Engine

log = logging.getLogger("podium.system_tasks")

HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH"})


def _http_response_body(response: httpx.Response) -> Any:
    text = response.text
    if not text:
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


def _request_headers(spec: Any) -> list[tuple[str, str]]:
    """`http_request.headers` as (name, value) pairs: a list value sends one header line
    per item (the official SDK's HttpInput sends `{"name": ["value"]}`); other values are
    rendered as Java's toString would (numbers, `true`/`false`)."""
    pairs: list[tuple[str, str]] = []
    if not isinstance(spec, dict):
        return pairs
    for name, value in spec.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((str(name), item if isinstance(item, str) else java_string(item)))
    return pairs


def _headers(response: httpx.Response) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        out.setdefault(name, []).append(value)
    return out


def _positive_ms(value: Any, default: int) -> int:
    """A timeout in ms from task input (a number or a numeric string), else `default`."""
    try:
        ms = int(value)
    except (TypeError, ValueError):
        return default
    return ms if ms > 0 else default


class SystemTaskRunner:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._client: httpx.AsyncClient | None = None
        # Task ids whose RunSystemTask is running now: a sweep that re-offers a task
        # still in flight must not call the endpoint a second time.
        self.in_flight: set[str] = set()
        self.hostname = socket.gethostname()

    @asynccontextmanager
    async def http_client(self) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(follow_redirects=True) as client:
            self._client = client
            try:
                yield client
            finally:
                self._client = None

    # ------------------------------------------------------------------ RunSystemTask

    def submit(self, workflow: Workflow, action: RunSystemTask) -> None:
        """Run `action` in the background; its result is applied to `workflow` later."""
        task = find_task(workflow, action.task_id)
        wt = task.workflow_task if task is not None else None
        async_complete = bool(
            action.input.get("asyncComplete")
            or (isinstance(wt, WorkflowTask) and wt.async_complete)
        )
        if action.task_id in self.in_flight:
            return
        self.in_flight.add(action.task_id)
        self._engine.nursery.start_soon(self._run, workflow, action, async_complete)

    async def _run(self, workflow: Workflow, action: RunSystemTask, async_complete: bool) -> None:
        try:
            await self._run_once(workflow, action, async_complete)
        finally:
            self.in_flight.discard(action.task_id)

    async def _run_once(
        self, workflow: Workflow, action: RunSystemTask, async_complete: bool
    ) -> None:
        try:
            if action.task_type == TaskType.HTTP:
                result = await self.http(action, async_complete)
            elif action.task_type == TaskType.START_WORKFLOW:
                result = await self.start_workflow_task(workflow, action)
            else:
                result = SystemTaskResult(
                    task_id=action.task_id,
                    status=TaskStatus.FAILED_WITH_TERMINAL_ERROR,
                    reason_for_incompletion=(
                        f"{action.task_type} tasks are not supported by Podium"
                    ),
                )
        except Exception as exc:  # never let one task kill the engine's nursery
            log.exception("system task %s failed", action.task_id)
            result = SystemTaskResult(
                task_id=action.task_id,
                status=TaskStatus.FAILED,
                reason_for_incompletion=f"{action.task_type} task failed: {exc!r}",
            )
        try:
            await self._engine.system_task_result(workflow.workflow_id, result)
        except PodiumError as exc:
            log.warning("result of system task %s not applied: %s", action.task_id, exc)

    async def http(self, action: RunSystemTask, async_complete: bool) -> SystemTaskResult:
        """Perform an HTTP task's request (spec 3.12)."""
        config = self._engine.config
        raw = action.input.get("http_request")
        spec: dict[str, Any] = raw if isinstance(raw, dict) else action.input
        uri = spec.get("uri")
        method = str(spec.get("method") or "").upper()

        def failed(reason: str, output: dict[str, Any] | None = None) -> SystemTaskResult:
            return SystemTaskResult(
                task_id=action.task_id,
                status=TaskStatus.FAILED,
                output_data=output or {},
                reason_for_incompletion=reason,
            )

        if not isinstance(uri, str) or not uri:
            return failed("http_request.uri: required (the URL to call)")
        if method not in HTTP_METHODS:
            allowed = ", ".join(sorted(HTTP_METHODS))
            return failed(f"http_request.method: {spec.get('method')!r} is not one of {allowed}")
        headers = _request_headers(spec.get("headers"))
        given = {name.lower() for name, _ in headers}
        accept = spec.get("accept") or "application/json"
        if "accept" not in given:
            headers.append(("Accept", ", ".join(accept) if isinstance(accept, list) else accept))
        body = spec.get("body")
        content: bytes | None = None
        if body is not None and method not in ("GET", "HEAD"):
            if "content-type" not in given:
                headers.append(("Content-Type", spec.get("contentType") or "application/json"))
            content = body.encode() if isinstance(body, str) else msgspec.json.encode(body)
        connect_ms = _positive_ms(spec.get("connectionTimeOut"), config.http_connect_timeout_ms)
        read_ms = _positive_ms(spec.get("readTimeOut"), config.http_read_timeout_ms)
        timeout = httpx.Timeout(
            connect=connect_ms / 1000,
            read=read_ms / 1000,
            write=read_ms / 1000,
            pool=read_ms / 1000,
        )
        client = self._client
        if client is None:
            raise RuntimeError("Engine.run() is not running: no HTTP client")
        try:
            response = await client.request(
                method, uri, headers=headers, content=content, timeout=timeout
            )
        except httpx.HTTPError as exc:
            return failed(f"Failed to invoke HTTP task due to: {type(exc).__name__}: {exc}")
        output = {
            "response": {
                "statusCode": response.status_code,
                "reasonPhrase": response.reason_phrase,
                "headers": _headers(response),
                "body": _http_response_body(response),
            }
        }
        if not 200 <= response.status_code < 300:
            return failed(
                "Failed to invoke HTTP task due to: "
                f"{response.status_code} {response.reason_phrase}",
                output,
            )
        return SystemTaskResult(
            task_id=action.task_id,
            status=TaskStatus.IN_PROGRESS if async_complete else TaskStatus.COMPLETED,
            output_data=output,
        )

    async def start_workflow_task(
        self, parent: Workflow, action: RunSystemTask
    ) -> SystemTaskResult:
        """START_WORKFLOW (spec 3.8): fire and forget, output {"workflowId"}."""
        raw = action.input.get("startWorkflow")
        try:
            if not isinstance(raw, dict):
                raise PodiumError("startWorkflow: required, a StartWorkflowRequest object")
            request = codec.convert(raw, StartWorkflowRequest, subject="startWorkflow")
            if request.correlation_id is UNSET or request.correlation_id is None:
                request.correlation_id = parent.correlation_id
            if not request.task_to_domain:
                request.task_to_domain = dict(parent.task_to_domain)
            workflow_id = await self._engine.start_workflow(request)
        except PodiumError as exc:
            return SystemTaskResult(
                task_id=action.task_id,
                status=TaskStatus.FAILED,
                reason_for_incompletion=exc.message,
            )
        return SystemTaskResult(
            task_id=action.task_id,
            status=TaskStatus.COMPLETED,
            output_data={"workflowId": workflow_id},
        )

    # ------------------------------------------------------------------ children

    async def start_child(self, parent: Workflow, action: StartChildWorkflow) -> None:
        """Create a SUB_WORKFLOW child with the decided id (idempotent), see module rules."""
        engine = self._engine
        request = StartWorkflowRequest(
            name=action.name,
            version=action.version,
            input=dict(action.input),
            correlation_id=action.correlation_id,
            task_to_domain=dict(action.task_to_domain),
            workflow_def=action.workflow_def if action.workflow_def is not None else UNSET,
            priority=action.priority,
        )
        try:
            outcome = await engine._create(
                request,
                workflow_id=action.workflow_id,
                parent_workflow_id=parent.workflow_id,
                parent_workflow_task_id=action.task_id,
            )
        except PodiumError as exc:
            await engine.system_task_result(
                parent.workflow_id,
                SystemTaskResult(
                    task_id=action.task_id,
                    status=TaskStatus.FAILED,
                    reason_for_incompletion=exc.message,
                ),
            )
            return
        child_id = action.workflow_id

        def scheduled(workflow: Workflow) -> bool:
            task = find_task(workflow, action.task_id)
            return (
                task is not None
                and task.status is TaskStatus.SCHEDULED
                and workflow.status not in WORKFLOW_TERMINAL
            )

        await engine.apply(
            parent.workflow_id,
            SystemTaskResult(
                task_id=action.task_id,
                status=TaskStatus.IN_PROGRESS,
                output_data={"subWorkflowId": child_id},
                sub_workflow_id=child_id,
            ),
            guard=scheduled,
        )
        if outcome is not None:
            # The child's own actions (its NotifyParent if it already ended) run only now,
            # after the parent task knows its child.
            await engine._after_commit(outcome)
            return
        # The child existed (a replayed action): if it already ended, the parent may have
        # missed its notification; tell it again (ignored if the task is done).
        child = await engine.get_workflow(child_id, include_tasks=False)
        if child.status in WORKFLOW_TERMINAL:
            await self._renotify(parent.workflow_id, action.task_id, child)

    async def _renotify(self, parent_id: str, task_id: str, child: Workflow) -> None:
        engine = self._engine
        parent = await engine.get_workflow(parent_id)
        task = find_task(parent, task_id)
        if task is not None and task.status not in TASK_TERMINAL:
            await engine._notify_parent(
                child, NotifyParent(parent_workflow_id=parent_id, parent_task_id=task_id)
            )

    async def start_failure_workflow(self, failed: Workflow, action: StartFailureWorkflow) -> None:
        """Start the failure workflow with its decided id (idempotent)."""
        request = StartWorkflowRequest(
            name=action.name,
            version=action.version,
            input=dict(action.input),
            correlation_id=action.correlation_id,
            task_to_domain=dict(action.task_to_domain),
        )
        try:
            await self._engine.start_workflow(request, workflow_id=action.workflow_id)
        except PodiumError as exc:
            log.warning(
                "failure workflow %s of %s not started: %s",
                action.name,
                failed.workflow_id,
                exc,
            )
