"""The workflows this process committed last, so a decide need not re-read (or re-decode)
them.

Rules:
- Only the write path uses it (Executor.apply and the poll's claim, both under the
  workflow lock); reads served to API callers always go to the store, so another
  process's commits are never hidden from them.
- An entry is the exact record the store accepted (encoded body + the version the store
  returned) and, when the committer had it, the Workflow object that record was encoded
  from. That object is never decided on: a decide works on `working_copy` of it
  (server/engine/persistence.py; every Task, list and top-level map copied, and the
  decider replaces nested values rather than editing them), so a decide or commit that
  fails leaves the cached object as committed, and a response or post-commit action
  holding the committed object never sees a later decide's changes. Nobody mutates a
  committed workflow (Outcome.workflow) after its commit.
- With `verify` on (the test suite turns it on) every use of a cached object first
  checks that it still encodes to the cached body, so any aliasing bug fails loudly.
- Safety across processes comes from the store's optimistic version check: a stale entry
  makes the commit raise VersionConflict; the caller drops the entry and reloads. A guard
  that declines (or raises) on a cached copy is re-checked on a fresh load.
- An entry is dropped whenever the outcome of a write is unknown (any error or
  cancellation around a commit), and when the workflow is deleted by this process.
- Bounded: least recently used entries are evicted past `limit` (records are a few KB),
  and only the `objects_limit` most recently committed workflows keep their object (a
  decoded workflow takes several times its record's memory; a held workflow is not
  decided often enough to need it).
"""

from __future__ import annotations

from collections import OrderedDict

from core.models import Workflow
from core.store import WorkflowRecord
from server.engine.persistence import encode_body, from_record, working_copy


class CacheCorrupted(AssertionError):
    """A cached workflow no longer matches its committed body (verify mode only)."""


class WorkflowCache:
    """Workflow id -> the last record this process committed, and its Workflow object
    (LRU, bounded)."""

    verify = False  # class-wide: tests turn it on (see module rules)

    def __init__(self, limit: int = 4096, objects_limit: int = 1024) -> None:
        self._records: OrderedDict[str, WorkflowRecord] = OrderedDict()
        # workflow id -> (its cached record, the workflow that record was encoded from)
        self._objects: OrderedDict[str, tuple[WorkflowRecord, Workflow]] = OrderedDict()
        self._limit = limit
        self._objects_limit = objects_limit
        self.hits = 0  # tests and benchmarks read these
        self.misses = 0

    def entry(self, workflow_id: str) -> tuple[WorkflowRecord, Workflow | None] | None:
        """The cached record and its committed Workflow object (None when the committer
        did not give it), or None (counted as a miss). Never decide on the object itself:
        take persistence.working_copy of it."""
        record = self._records.get(workflow_id)
        if record is None:
            self.misses += 1
            return None
        self._records.move_to_end(workflow_id)
        self.hits += 1
        pair = self._objects.get(workflow_id)
        if pair is None or pair[0] is not record:
            return record, None
        workflow = pair[1]
        if self.verify and encode_body(workflow) != record.body:
            raise CacheCorrupted(f"cached workflow {workflow_id} was changed after its commit")
        return record, workflow

    def working(self, workflow_id: str) -> tuple[WorkflowRecord, Workflow] | None:
        """The cached record and a Workflow to decide on: a working copy of the committed
        object, or the record's body decoded when there is no object; None on a miss."""
        entry = self.entry(workflow_id)
        if entry is None:
            return None
        record, committed = entry
        return record, from_record(record) if committed is None else working_copy(committed)

    def get(self, workflow_id: str) -> WorkflowRecord | None:
        """The cached record, or None (counted as a miss)."""
        entry = self.entry(workflow_id)
        return None if entry is None else entry[0]

    def put(self, record: WorkflowRecord, workflow: Workflow | None = None) -> None:
        """Remember `record` (its `version` must be the one the store now holds) and the
        committed `workflow` it was encoded from, if given (nobody may change it later)."""
        workflow_id = record.workflow_id
        self._objects.pop(workflow_id, None)
        if self._limit <= 0:
            return
        self._records[workflow_id] = record
        self._records.move_to_end(workflow_id)
        while len(self._records) > self._limit:
            gone, _ = self._records.popitem(last=False)
            self._objects.pop(gone, None)
        if workflow is not None and self._objects_limit > 0:
            self._objects[workflow_id] = (record, workflow)
            while len(self._objects) > self._objects_limit:
                self._objects.popitem(last=False)

    def drop(self, workflow_id: str) -> None:
        """Forget the workflow (its stored state is unknown or gone)."""
        self._records.pop(workflow_id, None)
        self._objects.pop(workflow_id, None)

    def __len__(self) -> int:
        return len(self._records)
