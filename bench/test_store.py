"""Store round trips on the embedded backends (memory, SQLite), as the engine uses them.

Rules: each round opens a fresh store (bench/store.py's BACKENDS), then times nothing
itself: the round is `N` create commits followed by `N` pop + completion commits, so
the per-round time divided by 2N is the mean round trip (store open and close
included, a small fixed part). The hot-path twin does not matter here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio

from bench import store as store_bench

N = 200


async def _round(backend: str) -> None:
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as scratch:
        async with store_bench.BACKENDS[backend](Path(scratch)) as store:
            await store_bench.bench_commit_create(store, N)
            await store_bench.bench_pop_commit(store, N)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_store_round_trips(benchmark: Any, backend: str) -> None:
    benchmark.group = f"store: {N} creates + {N} pop/complete"
    benchmark.extra_info["round_trips"] = 2 * N
    benchmark.pedantic(trio.run, args=(_round, backend), rounds=5, warmup_rounds=1)
