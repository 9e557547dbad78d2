"""The stored records of workflows this process committed last, so a decide need not
re-read them from the store.

Rules:
- Only the write path uses it (Executor.apply and the poll's claim, both under the
  workflow lock); reads served to API callers always go to the store, so another
  process's commits are never hidden from them.
- An entry is the exact record the store accepted (encoded body + the version the store
  returned), never a decoded object: a decide always works on a fresh decode, so a decide
  or commit that fails cannot leave a mutated workflow behind.
- Safety across processes comes from the store's optimistic version check: a stale entry
  makes the commit raise VersionConflict; the caller drops the entry and reloads. A guard
  that declines (or raises) on a cached copy is re-checked on a fresh load.
- An entry is dropped whenever the outcome of a write is unknown (any error or
  cancellation around a commit), and when the workflow is deleted by this process.
- Bounded: least recently used entries are evicted past `limit` (entries are a few KB).
"""

from __future__ import annotations

from collections import OrderedDict

from core.store import WorkflowRecord


class WorkflowCache:
    """Workflow id -> the last record this process committed (LRU, bounded)."""

    def __init__(self, limit: int = 4096) -> None:
        self._records: OrderedDict[str, WorkflowRecord] = OrderedDict()
        self._limit = limit
        self.hits = 0  # tests and benchmarks read these
        self.misses = 0

    def get(self, workflow_id: str) -> WorkflowRecord | None:
        """The cached record, or None (counted as a miss)."""
        record = self._records.get(workflow_id)
        if record is None:
            self.misses += 1
            return None
        self._records.move_to_end(workflow_id)
        self.hits += 1
        return record

    def put(self, record: WorkflowRecord) -> None:
        """Remember `record` (its `version` must be the one the store now holds)."""
        if self._limit <= 0:
            return
        self._records[record.workflow_id] = record
        self._records.move_to_end(record.workflow_id)
        while len(self._records) > self._limit:
            self._records.popitem(last=False)

    def drop(self, workflow_id: str) -> None:
        """Forget the workflow (its stored state is unknown or gone)."""
        self._records.pop(workflow_id, None)

    def __len__(self) -> int:
        return len(self._records)
