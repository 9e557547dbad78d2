"""`memory://`: the whole Store in process memory (tests, benchmarks, throwaway servers).

Rules:
- Nothing persists: a new MemoryStore is empty. Every method runs without an await point
  between its checks and its writes, so under trio each call is atomic by construction
  (a commit's version check, record write, task index and queue ops happen together).
- Fast paths are O(1) or O(log n): loads, commits, task-id lookup, queue push/pop/ack.
  running_ids and ids_by_correlation use secondary indexes; search scans (an admin call),
  filtering with core.search.
- Stored records are the caller's objects copied once (msgspec.structs.replace), so a
  caller mutating its record after commit() cannot change the store.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import msgspec

from core import search
from core.errors import VersionConflict
from core.store import (
    DECIDER_QUEUE,
    Commit,
    LogLine,
    PollRecord,
    QueueOp,
    SearchRequest,
    WorkflowRecord,
)
from server.stores.commit_rules import TERMINAL_STATUSES as TERMINAL
from server.stores.commit_rules import next_version
from server.stores.queue_heap import DelayQueue


class MemoryStore:
    """core.store.Store kept in dicts and heaps."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._task_defs: dict[str, bytes] = {}
        self._workflow_defs: dict[str, dict[int, bytes]] = {}
        self._event_handlers: dict[str, bytes] = {}
        self._workflows: dict[str, WorkflowRecord] = {}
        self._task_to_workflow: dict[str, str] = {}
        self._workflow_tasks: dict[str, set[str]] = defaultdict(set)
        # Secondary indexes so listing by name or correlation id does not scan everything.
        self._active_by_name: dict[str, set[str]] = defaultdict(set)
        self._by_correlation: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._seq = itertools.count()
        self._queues: dict[str, DelayQueue] = {}
        self._poll: dict[tuple[str, str | None], PollRecord] = {}
        self._logs: dict[str, list[LogLine]] = defaultdict(list)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # ------------------------------------------------------------------ metadata

    async def put_task_def(self, name: str, body: bytes) -> None:
        self._task_defs[name] = body

    async def get_task_def(self, name: str) -> bytes | None:
        return self._task_defs.get(name)

    async def list_task_defs(self) -> list[bytes]:
        return [self._task_defs[k] for k in sorted(self._task_defs)]

    async def delete_task_def(self, name: str) -> bool:
        return self._task_defs.pop(name, None) is not None

    async def put_workflow_def(self, name: str, version: int, body: bytes) -> None:
        self._workflow_defs.setdefault(name, {})[version] = body

    async def get_workflow_def(self, name: str, version: int | None) -> bytes | None:
        versions = self._workflow_defs.get(name)
        if not versions:
            return None
        return versions[max(versions)] if version is None else versions.get(version)

    async def list_workflow_defs(self) -> list[bytes]:
        return [
            self._workflow_defs[name][v]
            for name in sorted(self._workflow_defs)
            for v in sorted(self._workflow_defs[name])
        ]

    async def delete_workflow_def(self, name: str, version: int) -> bool:
        versions = self._workflow_defs.get(name)
        if versions is None or versions.pop(version, None) is None:
            return False
        if not versions:
            del self._workflow_defs[name]
        return True

    async def put_event_handler(self, name: str, body: bytes) -> None:
        self._event_handlers[name] = body

    async def get_event_handler(self, name: str) -> bytes | None:
        return self._event_handlers.get(name)

    async def list_event_handlers(self) -> list[bytes]:
        return [self._event_handlers[k] for k in sorted(self._event_handlers)]

    async def delete_event_handler(self, name: str) -> bool:
        return self._event_handlers.pop(name, None) is not None

    # ------------------------------------------------------------------ executions

    def _apply(self, commit: Commit, now_ms: int) -> int:
        record = commit.record
        wf_id = record.workflow_id
        previous = self._workflows.get(wf_id)
        version = next_version(None if previous is None else previous.version, commit)
        if previous is not None:
            self._unindex(previous)
        stored = self._workflows[wf_id] = msgspec.structs.replace(record, version=version)
        self._index(stored)
        tasks = self._workflow_tasks[wf_id]
        for task_id in commit.removed_task_ids:
            if self._task_to_workflow.get(task_id) == wf_id:
                del self._task_to_workflow[task_id]
            tasks.discard(task_id)
        for task_id in commit.added_task_ids:
            self._task_to_workflow[task_id] = wf_id
            tasks.add(task_id)
        for op in commit.queue_ops:
            self._queue_op(op, now_ms)
        return version

    def _index(self, r: WorkflowRecord) -> None:
        if r.status not in TERMINAL:
            self._active_by_name[r.workflow_name].add(r.workflow_id)
        if r.correlation_id is not None:
            self._by_correlation[(r.workflow_name, r.correlation_id)].add(r.workflow_id)

    def _unindex(self, r: WorkflowRecord) -> None:
        self._active_by_name[r.workflow_name].discard(r.workflow_id)
        if r.correlation_id is not None:
            self._by_correlation[(r.workflow_name, r.correlation_id)].discard(r.workflow_id)

    def _queue_op(self, op: QueueOp, now_ms: int) -> None:
        if op.kind == "push":
            self._queue(op.queue).push(op.message_id, op.priority, now_ms + op.delay_ms)
        else:  # "remove" | "ack": both delete the message
            queue = self._queues.get(op.queue)
            if queue is not None:
                queue.delete(op.message_id)

    async def commit(self, commit: Commit, now_ms: int) -> int:
        return self._apply(commit, now_ms)

    async def commit_many(self, commits: list[Commit], now_ms: int) -> list[int | Exception]:
        results: list[int | Exception] = []
        for c in commits:
            try:
                results.append(self._apply(c, now_ms))
            except VersionConflict as exc:
                results.append(exc)
        return results

    def _copy(self, workflow_id: str) -> WorkflowRecord | None:
        # A shallow copy is enough: every field is immutable (str, int, bytes).
        r = self._workflows.get(workflow_id)
        return None if r is None else msgspec.structs.replace(r)

    async def load(self, workflow_id: str) -> WorkflowRecord | None:
        return self._copy(workflow_id)

    async def load_many(self, workflow_ids: list[str]) -> list[WorkflowRecord | None]:
        return [self._copy(i) for i in workflow_ids]

    async def delete(self, workflow_id: str) -> bool:
        record = self._workflows.pop(workflow_id, None)
        if record is None:
            return False
        self._unindex(record)
        for task_id in self._workflow_tasks.pop(workflow_id, ()):
            if self._task_to_workflow.get(task_id) == workflow_id:
                del self._task_to_workflow[task_id]
        decider = self._queues.get(DECIDER_QUEUE)
        if decider is not None:
            decider.delete(workflow_id)
        return True

    async def workflow_id_for_task(self, task_id: str) -> str | None:
        return self._task_to_workflow.get(task_id)

    async def running_ids(self, workflow_name: str, workflow_version: int | None) -> list[str]:
        ids = self._active_by_name.get(workflow_name, ())
        if workflow_version is None:
            return sorted(ids)
        records = self._workflows
        return sorted(i for i in ids if records[i].workflow_version == workflow_version)

    async def ids_by_correlation(
        self, workflow_name: str, correlation_id: str, include_closed: bool
    ) -> list[str]:
        ids = self._by_correlation.get((workflow_name, correlation_id), ())
        records = self._workflows
        return sorted(i for i in ids if include_closed or records[i].status == "RUNNING")

    async def search(self, request: SearchRequest) -> tuple[int, list[WorkflowRecord]]:
        node = search.parse_query(request.query)
        terms = search.parse_free_text(request.free_text)
        keys = search.parse_sort(request.sort)
        hits = [
            r
            for r in self._workflows.values()
            if search.matches(node, r) and search.free_text_matches(terms, r)
        ]
        start, size = max(request.start, 0), max(request.size, 0)
        page = search.sort_rows(hits, keys)[start : start + size]
        return len(hits), [msgspec.structs.replace(r, body=b"") for r in page]

    # ------------------------------------------------------------------ queues

    def _queue(self, name: str) -> DelayQueue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = DelayQueue(self._seq)
        return queue

    async def push(
        self, queue: str, message_id: str, *, priority: int = 0, delay_ms: int = 0, now_ms: int
    ) -> None:
        self._queue(queue).push(message_id, priority, now_ms + delay_ms)

    async def pop(self, queue: str, count: int, *, unack_ms: int, now_ms: int) -> list[str]:
        q = self._queues.get(queue)
        return [] if q is None or count <= 0 else q.pop(count, now_ms, unack_ms)

    async def ack(self, queue: str, message_id: str) -> bool:
        q = self._queues.get(queue)
        return q is not None and q.delete(message_id)

    async def remove(self, queue: str, message_id: str) -> bool:
        return await self.ack(queue, message_id)

    async def postpone(
        self, queue: str, message_id: str, *, delay_ms: int, priority: int = 0, now_ms: int
    ) -> None:
        self._queue(queue).push(message_id, priority, now_ms + delay_ms)

    async def contains(self, queue: str, message_id: str) -> bool:
        q = self._queues.get(queue)
        return q is not None and message_id in q

    async def size(self, queue: str) -> int:
        q = self._queues.get(queue)
        return 0 if q is None else len(q)

    async def sizes(self) -> dict[str, int]:
        return {name: len(q) for name, q in sorted(self._queues.items()) if len(q)}

    async def peek(self, queue: str, count: int) -> list[str]:
        q = self._queues.get(queue)
        return [] if q is None else q.peek(count)

    # ------------------------------------------------------------------ workers

    async def record_poll(self, record: PollRecord) -> None:
        self._poll[(record.queue_name, record.domain)] = record

    async def poll_data(self, task_type: str | None) -> list[PollRecord]:
        rows = [r for r in self._poll.values() if task_type is None or r.queue_name == task_type]
        return sorted(rows, key=lambda r: (r.queue_name, r.domain or ""))

    async def add_logs(self, lines: list[LogLine]) -> None:
        for line in lines:
            self._logs[line.task_id].append(line)

    async def get_logs(self, task_id: str) -> list[LogLine]:
        return list(self._logs.get(task_id, ()))
