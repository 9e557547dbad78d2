"""The persistence contract every backend implements (memory, SQLite, Redis, PostgreSQL).

Rules:
- Async methods, called from trio. Backends live in server/stores/ (the only IO); this
  module only declares shapes, so core/ stays free of IO.
- The store never decodes workflow bodies: a workflow is an opaque `body` (bytes encoded
  by the engine) plus the few index fields search and listing need.
- A workflow's definition travels beside its body, not in it: `definition` (opaque bytes)
  named by `definition_ref` (a digest of them, so equal refs mean equal bytes). Thousands
  of executions share one definition, so a store keeps one copy per ref (written with
  the first commit that carries it, never deleted, never changed) and fills `definition`
  back in on `load`. Both empty: the body needs no definition.
- `commit()` is the unit of atomicity: one workflow write (checked against the version the
  caller loaded: optimistic concurrency), its task-id index changes, and the queue/timer
  operations the decision produced, applied all-or-nothing in one round trip. A version
  mismatch raises core.errors.VersionConflict and applies nothing.
- Queues deliver each message to one popper at a time: `pop` hides a message for
  `unack_ms`; unless acked (or removed/postponed) in that time it becomes visible again.
  Pop order: earliest deliver time first, then higher priority, then insertion order.
- Time is passed in (`now_ms`) wherever it matters, so tests control it.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

# The queue that wakes workflows (timers, retries, timeouts, sweeper): message id = workflow id.
DECIDER_QUEUE = "_deciderQueue"


class WorkflowRecord(msgspec.Struct, kw_only=True):
    """One stored workflow execution: index fields plus the opaque encoded body."""

    workflow_id: str
    workflow_name: str
    workflow_version: int
    status: str  # a WorkflowStatus value
    create_time: int
    update_time: int
    end_time: int = 0
    correlation_id: str | None = None
    parent_workflow_id: str | None = None
    # Text matched by search's freeText (the engine puts input and output JSON here).
    search_text: str = ""
    body: bytes = b""
    # The definition the body refers to, stored once per ref (module rules).
    definition_ref: str = ""
    definition: bytes = b""
    # Optimistic-concurrency counter, set by the store: 1 after create, +1 per commit.
    version: int = 0


class QueueOp(msgspec.Struct, kw_only=True, array_like=True):
    """A queue change made atomically with a workflow commit."""

    kind: str  # "push" | "remove" | "ack"
    queue: str
    message_id: str
    priority: int = 0
    delay_ms: int = 0  # for "push": visible at now_ms + delay_ms


class Commit(msgspec.Struct, kw_only=True):
    """Everything one decide persists. `expected_version` 0 means "create: must not exist"."""

    record: WorkflowRecord
    expected_version: int
    added_task_ids: list[str] = []
    removed_task_ids: list[str] = []
    queue_ops: list[QueueOp] = []


class SearchRequest(msgspec.Struct, kw_only=True):
    """Conductor's search parameters; `query` uses its SQL-like syntax (spec 1.2)."""

    query: str = ""
    free_text: str = "*"
    start: int = 0
    size: int = 100
    sort: str = ""  # "field:ASC|field2:DESC"


class PollRecord(msgspec.Struct, kw_only=True):
    queue_name: str
    domain: str | None
    worker_id: str | None
    last_poll_time: int


class LogLine(msgspec.Struct, kw_only=True):
    task_id: str
    log: str
    created_time: int


class MetadataStore(Protocol):
    """Task definitions, workflow definitions (every version) and event handlers, as JSON bytes."""

    async def put_task_def(self, name: str, body: bytes) -> None: ...
    async def get_task_def(self, name: str) -> bytes | None: ...
    async def list_task_defs(self) -> list[bytes]: ...
    async def delete_task_def(self, name: str) -> bool: ...

    async def put_workflow_def(self, name: str, version: int, body: bytes) -> None: ...
    async def get_workflow_def(self, name: str, version: int | None) -> bytes | None:
        """`version=None` returns the highest version."""
        ...

    async def list_workflow_defs(self) -> list[bytes]: ...
    async def delete_workflow_def(self, name: str, version: int) -> bool: ...

    async def put_event_handler(self, name: str, body: bytes) -> None: ...
    async def get_event_handler(self, name: str) -> bytes | None: ...
    async def list_event_handlers(self) -> list[bytes]: ...
    async def delete_event_handler(self, name: str) -> bool: ...


class ExecutionStore(Protocol):
    """Workflow executions: atomic commits, lookups, listing and search."""

    async def commit(self, commit: Commit, now_ms: int) -> int:
        """Apply atomically; return the record's new version. Raises VersionConflict."""
        ...

    async def commit_many(self, commits: list[Commit], now_ms: int) -> list[int | Exception]:
        """Several independent commits in one round trip (group commit); each succeeds or
        fails on its own, a VersionConflict is returned in its slot, not raised."""
        ...

    async def load(self, workflow_id: str) -> WorkflowRecord | None:
        """The record as committed, `definition` included (looked up by its ref)."""
        ...

    async def load_many(self, workflow_ids: list[str]) -> list[WorkflowRecord | None]: ...
    async def delete(self, workflow_id: str) -> bool:
        """Remove the execution, its task-id index entries and its decider-queue message."""
        ...

    async def workflow_id_for_task(self, task_id: str) -> str | None: ...
    async def running_ids(self, workflow_name: str, workflow_version: int | None) -> list[str]:
        """Ids of non-terminal (RUNNING and PAUSED) executions, sorted; `None` = all versions."""
        ...

    async def ids_by_correlation(
        self, workflow_name: str, correlation_id: str, include_closed: bool
    ) -> list[str]:
        """Ids sorted; without `include_closed` only RUNNING ones (as Conductor)."""
        ...

    async def search(self, request: SearchRequest) -> tuple[int, list[WorkflowRecord]]:
        """Filter, sort and page; returned records may omit `body` (b"").

        Semantics (operators, nulls, freeText, default sort, tiebreak) are core.search's;
        raises core.errors.BadRequest for a malformed query or sort.
        """
        ...


class QueueStore(Protocol):
    """Delayed-delivery priority queues with visibility timeouts."""

    async def push(
        self, queue: str, message_id: str, *, priority: int = 0, delay_ms: int = 0, now_ms: int
    ) -> None:
        """Add or replace (same id: new delivery time and priority)."""
        ...

    async def pop(self, queue: str, count: int, *, unack_ms: int, now_ms: int) -> list[str]:
        """Up to `count` visible ids, hidden for `unack_ms`; one round trip."""
        ...

    async def ack(self, queue: str, message_id: str) -> bool:
        """Delete the message (popped or not); True if it was there. Same as remove."""
        ...

    async def remove(self, queue: str, message_id: str) -> bool: ...
    async def postpone(
        self, queue: str, message_id: str, *, delay_ms: int, priority: int = 0, now_ms: int
    ) -> None: ...
    async def contains(self, queue: str, message_id: str) -> bool: ...
    async def size(self, queue: str) -> int: ...
    async def sizes(self) -> dict[str, int]:
        """Every non-empty queue's size (visible and unacked together)."""
        ...

    async def peek(self, queue: str, count: int) -> list[str]:
        """Ids in delivery order, without popping (admin listing)."""
        ...


class WorkerStore(Protocol):
    """Poll data and task execution logs."""

    async def record_poll(self, record: PollRecord) -> None: ...
    async def poll_data(self, task_type: str | None) -> list[PollRecord]:
        """`None` = all queues."""
        ...

    async def add_logs(self, lines: list[LogLine]) -> None: ...
    async def get_logs(self, task_id: str) -> list[LogLine]: ...


class Store(MetadataStore, ExecutionStore, QueueStore, WorkerStore, Protocol):
    """A whole backend. Created from a URL by server.stores.open_store()."""

    url: str

    async def open(self) -> None:
        """Connect, create or migrate the schema."""
        ...

    async def close(self) -> None: ...
