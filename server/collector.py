"""Garbage-collector settings for a serving process.

Rules: `tune_for_serving()` is called once, by the blocking entry point
(`server.app.run`, i.e. `podium server`), before the event loop starts. Code that embeds
the server in its own process (tests, `serve()` callers) keeps its own settings.

Why: every request allocates a few hundred container objects (coroutine frames, dicts,
msgspec structs), so CPython's default young-generation threshold (700 allocations)
starts a collection every request or two, and each one walks the objects the process
keeps (the workflow cache, route tables, imported modules). perf put the collector at
about a tenth of the server's CPU under `podium load`. Freezing what exists at startup
takes it out of every later collection; larger thresholds collect less often. Cycles
are still collected (trio's cancel scopes and tracebacks make some), only in bigger
batches; memory per held workflow is unchanged (README, Performance).
"""

from __future__ import annotations

import gc

# Allocations (net) between young-generation collections; CPython's default is 700.
YOUNG_THRESHOLD = 50_000
# Young collections per middle one, and middle collections per full one (defaults 10, 10).
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100


def tune_for_serving() -> None:
    """Freeze the objects alive now and raise the collection thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
