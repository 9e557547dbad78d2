"""The workflow definitions a store knows to be stored, by ref (core/store.py).

Rules:
- A ref is the digest of immutable bytes, so an entry is never stale: the cache is only
  bounded (emptied when full, then refilled as commits and loads meet refs again), never
  invalidated.
- An entry means "stored in this store": add one only after the write that stored it has
  committed (`remember_committed`, `remember`) or after reading it back from the store.
- `fill` sets each loaded record's definition, from the cache or by one `fetch` of the
  refs the cache lacks; a ref the store does not have leaves b"", and decoding the body
  then names the missing definition (server/engine/persistence.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from core.store import Commit, WorkflowRecord

DEFAULT_LIMIT = 4096


class StoredDefinitions:
    """A bounded map ref -> definition bytes of the definitions known to be stored."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._by_ref: dict[str, bytes] = {}
        self._limit = limit

    def __contains__(self, ref: object) -> bool:
        return ref in self._by_ref

    def __len__(self) -> int:
        return len(self._by_ref)

    def remember(self, ref: str, definition: bytes) -> None:
        if ref in self._by_ref:
            return
        if len(self._by_ref) >= self._limit:
            self._by_ref.clear()
        self._by_ref[ref] = definition

    def remember_committed(
        self, commits: Sequence[Commit], results: Sequence[int | Exception]
    ) -> None:
        """Remember the definitions of the commits that succeeded (result: a version)."""
        for commit, result in zip(commits, results, strict=True):
            record = commit.record
            if record.definition_ref and not isinstance(result, Exception):
                self.remember(record.definition_ref, record.definition)

    def unknown(self, records: Sequence[WorkflowRecord]) -> dict[str, bytes]:
        """The definitions these records name that are not known to be stored, by ref."""
        return {
            r.definition_ref: r.definition
            for r in records
            if r.definition_ref and r.definition_ref not in self._by_ref
        }

    async def fill(
        self,
        records: Sequence[WorkflowRecord | None],
        fetch: Callable[[list[str]], Awaitable[dict[str, bytes]]],
    ) -> None:
        """Set the definition of every record that names one (module rules)."""
        wanted = {r.definition_ref for r in records if r is not None and r.definition_ref}
        found = {ref: d for ref in wanted if (d := self._by_ref.get(ref)) is not None}
        missing = sorted(wanted - found.keys())
        if missing:
            for ref, definition in (await fetch(missing)).items():
                found[ref] = definition
                self.remember(ref, definition)
        for record in records:
            if record is not None and record.definition_ref:
                record.definition = found.get(record.definition_ref, b"")
