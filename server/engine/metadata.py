"""A short-lived cache of definitions and event handlers read from the store.

Rules: the decider needs every task definition synchronously (DeciderEnv.task_defs), so
they are held in memory and re-read at most every `metadata_ttl_ms`;
`invalidate()` (Engine.metadata_changed) makes the next read fresh, which is what the
REST layer calls after a metadata write in this process. Workflow definitions looked up
by (name, version) follow the same rule: a start reads its definition from the store at
most once per `metadata_ttl_ms`, so a new version registered through this process is
used by the very next start, and one registered through another process sharing the
store within `metadata_ttl_ms` (docs/compatibility.md). `fresh=True` (the metadata GET
API) always reads the store. Equal stored bytes decode to one shared (frozen)
WorkflowDef object (bounded memo), so a start does not decode its definition again and
the encoders and the decider's plan cache find it by identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from core import codec
from core.models import EventHandler, TaskDef, WorkflowDef
from core.store import Store

_DEFS_MAX = 256  # decoded workflow definitions kept by their stored bytes


class MetadataCache:
    def __init__(self, store: Store, now_ms: Callable[[], int], ttl_ms: int) -> None:
        self._store = store
        self._now_ms = now_ms
        self._ttl_ms = ttl_ms
        self._task_defs: dict[str, TaskDef] = {}
        self._task_defs_at = -1
        self._handlers: list[EventHandler] = []
        self._handlers_at = -1
        self._defs: dict[bytes, WorkflowDef] = {}  # stored bytes -> their decode
        # (name, version or None for the latest) -> (when it was read, the definition)
        self._lookups: dict[tuple[str, int | None], tuple[int, WorkflowDef]] = {}

    def invalidate(self) -> None:
        self._task_defs_at = -1
        self._handlers_at = -1
        self._lookups.clear()

    def _stale(self, at: int) -> bool:
        return at < 0 or self._now_ms() - at >= self._ttl_ms

    async def task_defs(self) -> Mapping[str, TaskDef]:
        """Every registered task definition by name."""
        if self._stale(self._task_defs_at):
            bodies = await self._store.list_task_defs()
            defs = [codec.decode(b, TaskDef, subject="stored task definition") for b in bodies]
            self._task_defs = {d.name: d for d in defs}
            self._task_defs_at = self._now_ms()
        return self._task_defs

    def cached_task_defs(self) -> Mapping[str, TaskDef]:
        """The last task definitions read, without a round trip (may be empty)."""
        return self._task_defs

    async def workflow_def(
        self, name: str, version: int | None, *, fresh: bool = False
    ) -> WorkflowDef | None:
        """`version=None` is the latest version; `fresh` skips the cache (module rules)."""
        key = (name, version)
        if not fresh:
            hit = self._lookups.get(key)
            if hit is not None and not self._stale(hit[0]):
                return hit[1]
        body = await self._store.get_workflow_def(name, version)
        if body is None:
            self._lookups.pop(key, None)
            return None
        body = bytes(body)
        decoded = self._defs.get(body)
        if decoded is None:
            decoded = codec.decode(body, WorkflowDef, subject="stored workflow definition")
            if len(self._defs) >= _DEFS_MAX:
                self._defs.clear()
            self._defs[body] = decoded
        if len(self._lookups) >= _DEFS_MAX:
            self._lookups.clear()
        self._lookups[key] = (self._now_ms(), decoded)
        return decoded

    async def event_handlers(self) -> list[EventHandler]:
        if self._stale(self._handlers_at):
            bodies = await self._store.list_event_handlers()
            self._handlers = [
                codec.decode(b, EventHandler, subject="stored event handler") for b in bodies
            ]
            self._handlers_at = self._now_ms()
        return self._handlers
