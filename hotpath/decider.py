"""The decider's public entry: `decide(workflow, event, env, now_ms) -> Decision`.

Rules: a facade only; the logic lives in hotpath/decider_py.py, compiled a second time
as hotpath.decider_c. PODIUM_PURE_PYTHON picks the twin (see hotpath/__init__.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotpath import IMPLEMENTATION, load_twin

if TYPE_CHECKING:
    from hotpath.decider_py import decide as decide
    from hotpath.rows_py import find_task as find_task
else:
    decide = load_twin("decider").decide
    # A task row by id, O(1) (ids end with the row's sequence number).
    find_task = load_twin("rows").find_task

__all__ = ["IMPLEMENTATION", "decide", "find_task"]
