"""A typed async client for Podium's (Conductor's) REST API, on trio (httpx under asyncio).

Rules:
- One method per REST operation, typed with the `core.models` Structs; bodies are encoded
  and decoded with `core.codec` (one msgspec encoder, one decoder per type), so what goes
  over the wire is exactly what the server's own models say.
- `server_url` is the server's root (`http://host:8080`) or its API prefix
  (`http://host:8080/api`); both mean the same server.
- Any non-2xx answer raises `ConductorApiError(status, message, body)`, the message taken
  from Conductor's error body when there is one. A 2xx answer whose body does not match
  the expected model raises `ConductorApiError` too (status kept, message says what was
  wrong). Transport failures (refused connection, reset, timeout) raise
  `client.http.TransportError` (`TransportTimeout` for a timeout), so callers can tell
  "the server said no" from "no answer".
- Nothing here retries or sleeps (except `client.http`'s one resend of an idempotent
  request on a kept-alive connection the server had closed): retry policy belongs to the
  caller (`client.runner`).
- Under trio requests go through `client.http.HttpPool` (keep-alive, O(1) per request).
  Under asyncio, or with an `httpx.AsyncClient` passed in, they go through httpx (imported
  only then), its transport errors re-raised as `TransportError`. The choice is made on
  the first request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import msgspec
import sniffio

from client.http import HttpPool, Response, TransportError, TransportTimeout
from core import codec
from core.errors import DefinitionError
from core.models import (
    BulkResponse,
    SearchResult,
    StartWorkflowRequest,
    Task,
    TaskDef,
    TaskExecLog,
    TaskResult,
    Workflow,
    WorkflowDef,
    WorkflowStatusResponse,
    WorkflowSummary,
)

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

__all__ = ["ConductorApiError", "ConductorClient", "api_base_url"]

#: Seconds a request may take unless a method says otherwise (a long poll adds its wait).
DEFAULT_TIMEOUT_S = 30.0

# Header lines per (accept, has a body), rendered once.
_HEADERS = {
    (accept, has_body): f"Accept: {accept}\r\n"
    + ("Content-Type: application/json\r\n" if has_body else "")
    for accept in ("application/json", "text/plain")
    for has_body in (False, True)
}


class ConductorApiError(Exception):
    """The server answered with a non-2xx status, or with a body of the wrong shape.

    Attributes:
        status: the HTTP status code.
        message: the server's `message` (or a description of what was wrong).
        body: the raw response body, as text.
        retryable: True when asking again later may succeed (5xx, 429, or the server's
            `retryable: true`).
    """

    def __init__(self, status: int, message: str, body: str = "") -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = body
        self.retryable = status >= 500 or status == 429 or _body_says_retryable(body)


def _body_says_retryable(body: str) -> bool:
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("retryable") is True


def api_base_url(server_url: str) -> str:
    """The API prefix for a server URL: `http://h:1` and `http://h:1/api/` give `http://h:1/api`.

    Args:
        server_url: the server's root URL or its `/api` prefix.

    Returns:
        The URL every REST path is appended to, without a trailing slash.

    Raises:
        ValueError: the URL is not an absolute http(s) URL.
    """
    url = server_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"server URL {server_url!r} must start with http:// or https://, "
            "e.g. http://127.0.0.1:8080"
        )
    return url if url.endswith("/api") else f"{url}/api"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _params(**values: Any) -> dict[str, str]:
    """Query parameters without the unset ones; booleans spelled as Conductor does."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = _bool(value) if isinstance(value, bool) else str(value)
    return out


class ConductorClient:
    """An async client for one Podium (or Conductor) server.

    Use it as an async context manager, or call `aclose()` when done. An `httpx.AsyncClient`
    passed in is used (under trio too) and left open (the caller owns it).

    Args:
        server_url: the server's root URL or its `/api` prefix.
        http: an existing httpx client to send through; by default requests go through
            `client.http.HttpPool` under trio, and a created httpx client under asyncio.
        timeout_s: seconds any one request may take (long polls add their own wait).
        max_connections: the most connections open at once (requests beyond wait).
    """

    def __init__(
        self,
        server_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_connections: int = 200,
    ) -> None:
        self.base_url = api_base_url(server_url)
        parts = urlsplit(self.base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path  # "/api", or "/some/path/api"
        self._owns_http = http is None
        self._timeout_s = timeout_s
        self._max_connections = max_connections
        self.http: httpx.AsyncClient | None = http
        self.pool: HttpPool | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this object opened (a caller's httpx client stays open)."""
        if self.pool is not None:
            await self.pool.aclose()
        if self._owns_http and self.http is not None:
            await self.http.aclose()

    # -- plumbing -------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        accept: str = "application/json",
        timeout_s: float | None = None,
        retry_safe: bool | None = None,
    ) -> Response:
        content: bytes | None = raw_body
        if body is not None:
            content = codec.encode(body)
        target = self._prefix + path
        if params:
            target = f"{target}?{urlencode(params, quote_via=quote)}"
        timeout = timeout_s if timeout_s is not None else self._timeout_s
        headers = _HEADERS[accept, content is not None]
        pool = self.pool
        if pool is not None:
            response = await pool.request(
                method,
                target,
                headers=headers,
                body=content,
                timeout_s=timeout,
                retry_safe=retry_safe,
            )
        else:
            response = await self._first_request(
                method, target, headers, content, timeout, retry_safe
            )
        if not 200 <= response.status < 300:
            raise ConductorApiError(response.status, _error_message(response), response.text)
        return response

    async def _first_request(
        self,
        method: str,
        target: str,
        headers: str,
        content: bytes | None,
        timeout_s: float,
        retry_safe: bool | None,
    ) -> Response:
        """Pick the transport (see the module rules), then send."""
        if self.http is None and sniffio.current_async_library() == "trio":
            self.pool = HttpPool(self._origin, max_connections=self._max_connections)
            return await self.pool.request(
                method,
                target,
                headers=headers,
                body=content,
                timeout_s=timeout_s,
                retry_safe=retry_safe,
            )
        return await self._httpx_request(method, target, headers, content, timeout_s)

    async def _httpx_request(
        self, method: str, target: str, headers: str, content: bytes | None, timeout_s: float
    ) -> Response:
        import httpx

        if self.http is None:
            self.http = httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=min(100, self._max_connections),
                )
            )
        lines = [line.split(": ", 1) for line in headers.split("\r\n") if line]
        url = self._origin + target
        try:
            answer = await self.http.request(
                method,
                url,
                content=content,
                headers={name: value for name, value in lines},
                timeout=timeout_s,
            )
        except httpx.TimeoutException as exc:
            raise TransportTimeout(method, url, f"timed out ({exc})") from exc
        except httpx.TransportError as exc:
            raise TransportError(method, url, str(exc) or type(exc).__name__) from exc
        return Response(
            answer.status_code, answer.reason_phrase, answer.headers.raw, answer.content
        )

    async def _fetch(self, type_: type[T], method: str, path: str, **options: Any) -> T:
        """Send a request and decode its answer as `type_`."""
        response = await self._request(method, path, **options)
        return self._decode(response, type_, method, path)

    async def _fetch_or_none(
        self, type_: type[T], method: str, path: str, **options: Any
    ) -> T | None:
        """As `_fetch`, but None for a 204 or an empty body."""
        response = await self._request(method, path, **options)
        if response.status == 204 or not response.body.strip():
            return None
        return self._decode(response, type_, method, path)

    def _decode(self, response: Response, type_: type[T], method: str, path: str) -> T:
        try:
            return codec.decode(response.body, type_, subject="response body")
        except DefinitionError as exc:
            raise ConductorApiError(
                response.status,
                f"unexpected response from {method} {self._prefix}{path.split('?')[0]}: "
                f"{exc.message}",
                response.text,
            ) from exc

    @staticmethod
    def _text_id(response: Response) -> str:
        """A bare id from a text/plain answer (tolerating a JSON-quoted one)."""
        text = response.text.strip()
        if text.startswith('"'):
            try:
                value = json.loads(text)
            except ValueError:
                return text
            return value if isinstance(value, str) else text
        return text

    # -- metadata -------------------------------------------------------------------------

    async def register_task_defs(self, task_defs: Sequence[TaskDef]) -> None:
        """Create or overwrite task definitions (`POST /metadata/taskdefs`).

        Args:
            task_defs: one or more TaskDefs; existing names are overwritten.
        """
        await self._request("POST", "/metadata/taskdefs", body=list(task_defs))

    async def update_task_def(self, task_def: TaskDef) -> None:
        """Replace an existing task definition (`PUT /metadata/taskdefs`); 404 if unknown."""
        await self._request("PUT", "/metadata/taskdefs", body=task_def)

    async def get_task_def(self, name: str) -> TaskDef:
        """One task definition by name (`GET /metadata/taskdefs/{name}`)."""
        return await self._fetch(TaskDef, "GET", f"/metadata/taskdefs/{_seg(name)}")

    async def get_task_defs(self) -> list[TaskDef]:
        """Every task definition (`GET /metadata/taskdefs`)."""
        return await self._fetch(list[TaskDef], "GET", "/metadata/taskdefs")

    async def delete_task_def(self, name: str) -> None:
        """Remove a task definition (`DELETE /metadata/taskdefs/{name}`)."""
        await self._request("DELETE", f"/metadata/taskdefs/{_seg(name)}")

    async def register_workflow_def(
        self, definition: WorkflowDef, *, overwrite: bool = False
    ) -> None:
        """Create a workflow definition (`POST /metadata/workflow`).

        Args:
            definition: the definition to store.
            overwrite: replace an existing (name, version); without it that is a 409.
        """
        await self._request(
            "POST", "/metadata/workflow", params=_params(overwrite=overwrite), body=definition
        )

    async def update_workflow_defs(self, definitions: Sequence[WorkflowDef]) -> BulkResponse:
        """Create or replace workflow definitions (`PUT /metadata/workflow`).

        Returns:
            The server's BulkResponse (an empty one when the server answers with no body,
            as classic Conductor does).
        """
        bulk = await self._fetch_or_none(
            BulkResponse, "PUT", "/metadata/workflow", body=list(definitions)
        )
        return BulkResponse() if bulk is None else bulk

    async def get_workflow_def(self, name: str, version: int | None = None) -> WorkflowDef:
        """A workflow definition; the latest version when `version` is None."""
        return await self._fetch(
            WorkflowDef, "GET", f"/metadata/workflow/{_seg(name)}", params=_params(version=version)
        )

    async def get_workflow_defs(self) -> list[WorkflowDef]:
        """Every version of every workflow definition (`GET /metadata/workflow`)."""
        return await self._fetch(list[WorkflowDef], "GET", "/metadata/workflow")

    async def delete_workflow_def(self, name: str, version: int) -> None:
        """Remove one version of a workflow definition."""
        await self._request("DELETE", f"/metadata/workflow/{_seg(name)}/{version}")

    # -- workflows ------------------------------------------------------------------------

    async def start_workflow(self, request: StartWorkflowRequest) -> str:
        """Start a workflow (`POST /workflow`).

        Args:
            request: name, version, input, correlation id, optional inline definition.

        Returns:
            The new workflow's id.
        """
        response = await self._request("POST", "/workflow", body=request, accept="text/plain")
        return self._text_id(response)

    async def start_workflow_by_name(
        self,
        name: str,
        input: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        correlation_id: str | None = None,
        priority: int | None = None,
    ) -> str:
        """Start a registered workflow by name (`POST /workflow/{name}`).

        Returns:
            The new workflow's id.
        """
        response = await self._request(
            "POST",
            f"/workflow/{_seg(name)}",
            params=_params(version=version, correlationId=correlation_id, priority=priority),
            body=dict(input or {}),
            accept="text/plain",
        )
        return self._text_id(response)

    async def get_workflow(self, workflow_id: str, *, include_tasks: bool = True) -> Workflow:
        """A workflow execution (`GET /workflow/{id}`)."""
        return await self._fetch(
            Workflow,
            "GET",
            f"/workflow/{_seg(workflow_id)}",
            params=_params(includeTasks=include_tasks),
        )

    async def get_workflow_status(
        self,
        workflow_id: str,
        *,
        include_output: bool = False,
        include_variables: bool = False,
    ) -> WorkflowStatusResponse:
        """The short status of a workflow (`GET /workflow/{id}/status`)."""
        return await self._fetch(
            WorkflowStatusResponse,
            "GET",
            f"/workflow/{_seg(workflow_id)}/status",
            params=_params(includeOutput=include_output, includeVariables=include_variables),
        )

    async def terminate_workflow(
        self,
        workflow_id: str,
        *,
        reason: str | None = None,
        trigger_failure_workflow: bool = False,
    ) -> None:
        """Terminate a running or paused workflow (`DELETE /workflow/{id}`)."""
        await self._request(
            "DELETE",
            f"/workflow/{_seg(workflow_id)}",
            params=_params(reason=reason, triggerFailureWorkflow=trigger_failure_workflow or None),
        )

    async def pause_workflow(self, workflow_id: str) -> None:
        """Pause a running workflow (`PUT /workflow/{id}/pause`)."""
        await self._request("PUT", f"/workflow/{_seg(workflow_id)}/pause", raw_body=b"{}")

    async def resume_workflow(self, workflow_id: str) -> None:
        """Resume a paused workflow (`PUT /workflow/{id}/resume`)."""
        await self._request("PUT", f"/workflow/{_seg(workflow_id)}/resume", raw_body=b"{}")

    async def retry_workflow(
        self, workflow_id: str, *, resume_subworkflow_tasks: bool = False
    ) -> None:
        """Retry a failed workflow from its failed tasks (`POST /workflow/{id}/retry`)."""
        await self._request(
            "POST",
            f"/workflow/{_seg(workflow_id)}/retry",
            params=_params(resumeSubworkflowTasks=resume_subworkflow_tasks),
            raw_body=b"{}",
        )

    async def restart_workflow(
        self, workflow_id: str, *, use_latest_definitions: bool = False
    ) -> None:
        """Restart a terminal workflow from the beginning (`POST /workflow/{id}/restart`)."""
        await self._request(
            "POST",
            f"/workflow/{_seg(workflow_id)}/restart",
            params=_params(useLatestDefinitions=use_latest_definitions),
            raw_body=b"{}",
        )

    async def search_workflows(
        self,
        query: str | None = None,
        *,
        free_text: str = "*",
        start: int = 0,
        size: int = 100,
        sort: str | None = None,
    ) -> SearchResult[WorkflowSummary]:
        """Search workflow executions (`GET /workflow/search`).

        Args:
            query: a filter such as `workflowType = 'x' AND status IN (FAILED)`.
            free_text: full-text query; `*` matches everything.
            start: offset of the first hit.
            size: at most this many hits.
            sort: e.g. `startTime:DESC`.

        Returns:
            `totalHits` and one page of workflow summaries.
        """
        return await self._fetch(
            SearchResult[WorkflowSummary],
            "GET",
            "/workflow/search",
            params=_params(query=query, freeText=free_text, start=start, size=size, sort=sort),
        )

    # -- tasks ----------------------------------------------------------------------------

    async def poll_task(
        self, task_type: str, *, worker_id: str | None = None, domain: str | None = None
    ) -> Task | None:
        """Take one task of a type (`GET /tasks/poll/{type}`); None when there is none."""
        return await self._fetch_or_none(
            Task,
            "GET",
            f"/tasks/poll/{_seg(task_type)}",
            params=_params(workerid=worker_id, domain=domain),
        )

    async def batch_poll(
        self,
        task_type: str,
        *,
        count: int = 1,
        timeout_ms: int = 100,
        worker_id: str | None = None,
        domain: str | None = None,
    ) -> list[Task]:
        """Take up to `count` tasks, waiting up to `timeout_ms` for the first one.

        `GET /tasks/poll/batch/{type}`: the server long-polls, answering as soon as a task
        is available. Every returned task is IN_PROGRESS and held for this worker.

        Args:
            task_type: the task definition name.
            count: most tasks wanted.
            timeout_ms: server-side wait when no task is ready (at most 5000).
            worker_id: recorded on the tasks and in poll data.
            domain: the task domain to poll, if any.

        Returns:
            The tasks handed out (possibly none).
        """
        path = f"/tasks/poll/batch/{_seg(task_type)}?"
        if worker_id is not None:
            path += f"workerid={_seg(worker_id)}&"
        path += f"count={int(count)}&timeout={int(timeout_ms)}"
        if domain is not None:
            path += f"&domain={_seg(domain)}"
        tasks = await self._fetch_or_none(
            list[Task], "GET", path, timeout_s=self._timeout_s + timeout_ms / 1000
        )
        return [] if tasks is None else tasks

    async def update_task(self, result: TaskResult) -> str:
        """Report a task's result (`POST /tasks`).

        Returns:
            The task id the server echoes.
        """
        response = await self._request(
            "POST", "/tasks", body=result, accept="text/plain", retry_safe=True
        )
        return self._text_id(response)

    async def update_task_v2(self, result: TaskResult) -> Task | None:
        """Report a task's result and take the next task of the same type, if any.

        `POST /tasks/update-v2`: the returned task is already IN_PROGRESS for this worker
        and must be run (or it waits for its response timeout).

        Returns:
            The next task, or None (204).
        """
        # Resending is safe: the runner resends a result on any transport error anyway.
        return await self._fetch_or_none(
            Task, "POST", "/tasks/update-v2", body=result, retry_safe=True
        )

    async def get_task(self, task_id: str) -> Task:
        """One task by id (`GET /tasks/{taskId}`)."""
        return await self._fetch(Task, "GET", f"/tasks/{_seg(task_id)}")

    async def add_task_log(self, task_id: str, line: str) -> None:
        """Append a log line to a task (`POST /tasks/{taskId}/log`)."""
        await self._request(
            "POST", f"/tasks/{_seg(task_id)}/log", raw_body=msgspec.json.encode(line)
        )

    async def get_task_logs(self, task_id: str) -> list[TaskExecLog]:
        """A task's log lines (`GET /tasks/{taskId}/log`); empty when there are none."""
        logs = await self._fetch_or_none(list[TaskExecLog], "GET", f"/tasks/{_seg(task_id)}/log")
        return [] if logs is None else logs


@lru_cache(maxsize=4096)
def _seg(value: str) -> str:
    """One URL path segment (or query value), percent-encoded (ids and names may hold `/`
    or spaces); cached, as task types and worker ids repeat on every poll."""
    return quote(value, safe="")


def _error_message(response: Response) -> str:
    text = response.text
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return text.strip()[:500] or response.reason or "no message"
