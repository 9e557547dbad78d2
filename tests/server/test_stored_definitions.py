"""server/stores/definitions.py: what counts as stored, the bound, filling loaded records."""

from __future__ import annotations

import msgspec

from core.errors import Unavailable, VersionConflict
from core.store import Commit, WorkflowRecord
from server.stores.definitions import StoredDefinitions


def _rec(wf_id: str, ref: str = "", definition: bytes = b"") -> WorkflowRecord:
    record = WorkflowRecord(
        workflow_id=wf_id,
        workflow_name="wf",
        workflow_version=1,
        status="RUNNING",
        create_time=1,
        update_time=1,
    )
    return msgspec.structs.replace(record, definition_ref=ref, definition=definition)


def test_only_committed_definitions_count_as_stored() -> None:
    known = StoredDefinitions()
    commits = [
        Commit(record=_rec("w1", "r1", b"d1"), expected_version=0),
        Commit(record=_rec("w2", "r2", b"d2"), expected_version=0),
        Commit(record=_rec("w3", "r3", b"d3"), expected_version=0),
        Commit(record=_rec("w4"), expected_version=0),
    ]
    known.remember_committed(commits, [1, VersionConflict("lost"), Unavailable("down"), 1])
    assert ("r1" in known, "r2" in known, "r3" in known, "" in known) == (True, False, False, False)
    assert known.unknown([c.record for c in commits]) == {"r2": b"d2", "r3": b"d3"}


def test_the_cache_is_bounded_by_emptying_it() -> None:
    known = StoredDefinitions(limit=2)
    known.remember("a", b"1")
    known.remember("b", b"2")
    known.remember("a", b"1")  # already there: no change
    assert len(known) == 2
    known.remember("c", b"3")
    assert ("a" in known, "b" in known, "c" in known) == (False, False, True)


async def test_fill_fetches_only_what_it_lacks_and_leaves_the_absent_empty() -> None:
    known = StoredDefinitions()
    known.remember("cached", b"c")
    asked: list[list[str]] = []

    async def fetch(refs: list[str]) -> dict[str, bytes]:
        asked.append(refs)
        return {"stored": b"s"}

    records = [_rec("w1", "cached"), None, _rec("w2", "stored"), _rec("w3", "gone"), _rec("w4")]
    await known.fill(records, fetch)
    assert asked == [["gone", "stored"]]
    assert [r.definition for r in records if r] == [b"c", b"s", b"", b""]
    assert "stored" in known
    assert "gone" not in known
    await known.fill([_rec("w5", "stored")], fetch)
    assert len(asked) == 1  # now cached
