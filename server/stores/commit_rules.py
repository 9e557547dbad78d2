"""Rules every backend applies the same way when it writes a Commit.

Rules: pure functions, no IO; backends call them inside their own atomic section (a
transaction, a Lua script, or a stretch of code without an await point).
"""

from __future__ import annotations

from core.enums import WORKFLOW_TERMINAL
from core.errors import VersionConflict
from core.store import Commit

# Workflow statuses (strings) that leave running_ids and the RUNNING-only correlation list.
TERMINAL_STATUSES = frozenset(s.value for s in WORKFLOW_TERMINAL)


def next_version(current_version: int | None, commit: Commit) -> int:
    """The version `commit` writes, given the stored one (None = no such workflow).

    Raises:
        VersionConflict: create of an existing id, update of a missing one, or an
            update whose `expected_version` is not the stored version.
    """
    wf_id = commit.record.workflow_id
    if commit.expected_version == 0:
        if current_version is not None:
            raise VersionConflict(f"workflow {wf_id} already exists (version {current_version})")
        return 1
    if current_version is None:
        raise VersionConflict(
            f"workflow {wf_id} does not exist (expected version {commit.expected_version})"
        )
    if current_version != commit.expected_version:
        raise VersionConflict(
            f"workflow {wf_id} is at version {current_version}, "
            f"not {commit.expected_version}: reload it and decide again"
        )
    return current_version + 1
