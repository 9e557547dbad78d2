"""What every API module shares: the engine, the metrics, and small request helpers.

Rules: handlers reach the engine and the store only through ApiContext; a path or query
value that cannot be read is a 400 naming the parameter (never a 500). Metrics are
updated from handlers on the trio thread (the registry takes no locks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import BadRequest, DefinitionError, FieldError
from server.engine import Engine
from server.http import Request
from server.http.metrics import Registry

# Integers that reach a store must fit a signed 64-bit column; versions are Java ints.
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

# Batch poll durations are up to the 5 s long-poll limit: buckets to match.
POLL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 6.0)


class ApiMetrics:
    """The Prometheus families the API maintains (rendered at `/metrics`)."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry
        self.workflow_starts = r.counter(
            "podium_workflow_starts_total", "Workflows started through the API", ["workflow"]
        )
        self.workflows = r.gauge(
            "podium_workflows",
            "Stored workflow executions by status (COMPLETED/FAILED/... count finished runs)",
            ["status"],
        )
        self.task_updates = r.counter(
            "podium_task_updates_total", "Task results reported by workers", ["status"]
        )
        self.tasks_polled = r.counter(
            "podium_tasks_polled_total", "Tasks handed to workers by polls", ["task_type"]
        )
        self.poll_seconds = r.histogram(
            "podium_poll_seconds",
            "Time a poll request took, long-poll wait included",
            ["task_type"],
            buckets=POLL_BUCKETS,
        )
        self.queue_depth = r.gauge(
            "podium_queue_depth", "Messages in each task queue (visible and in flight)", ["queue"]
        )
        self.info = r.gauge(
            "podium_info", "Constant 1, labelled with the build", ["version", "hotpath"]
        )


@dataclass(kw_only=True)
class ApiContext:
    """Everything a handler needs.

    Attributes:
        engine: the running Engine.
        metrics: the API's Prometheus families.
        version: Podium's version (served at /api/version).
        store_url: the store URL, without credentials (admin config).
        settings: extra facts for `GET /api/admin/config`.
    """

    engine: Engine
    metrics: ApiMetrics
    version: str
    store_url: str
    settings: dict[str, str] = field(default_factory=dict)


def path_str(request: Request, name: str) -> str:
    """A path parameter (the router guarantees it is present and non-empty)."""
    return request.path_params[name]


def path_int(request: Request, name: str) -> int:
    """A path parameter that must be an integer.

    Raises:
        BadRequest: the value is not an integer.
    """
    raw = request.path_params[name]
    try:
        value = int(raw, 10)
    except ValueError:
        raise BadRequest(f"Path parameter '{name}' must be an integer, got {raw!r}") from None
    if not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise BadRequest(f"Path parameter '{name}' must fit a 32-bit integer, got {value}")
    return value


def optional_int(request: Request, name: str) -> int | None:
    """An integer query parameter that may be absent (None); a 32-bit int (versions)."""
    raw = request.query_str(name)
    if raw is None or raw.strip() == "":
        return None
    return request.query_int(name, 0, minimum=-INT32_MAX - 1, maximum=INT32_MAX)


def check_version(value: object, path: str) -> None:
    """A definition or request `version` must be a 32-bit int, as in Conductor.

    Raises:
        DefinitionError: (400) naming `path`.
    """
    if isinstance(value, int) and not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise DefinitionError(
            [FieldError(path, f"must fit a 32-bit integer, got {value}", value)],
            subject="request body",
        )
