"""server.engine.metadata: workflow definitions looked up by starts are read from the store
at most once per metadata_ttl_ms, a write through this process is seen at once, one made
by another process (straight into the store) after the TTL, and `fresh` always reads."""

from __future__ import annotations

import trio

from core import codec
from server.engine import EngineConfig
from server.stores.memory import MemoryStore
from tests.server.engine_helpers import (
    RecordingStore,
    register,
    running_engine,
    simple,
    start,
    wf_def,
)


async def test_starts_within_the_ttl_read_the_definition_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = RecordingStore()
    async with running_engine(store, EngineConfig(metadata_ttl_ms=2_000)) as engine:
        await register(engine, wf_def("one", [simple("a", "t")]))
        for _ in range(5):
            await start(engine, "one")
        assert store.def_reads == 1
        await trio.sleep(2.5)
        await start(engine, "one")
        assert store.def_reads == 2


async def test_another_process_s_new_version_is_used_after_the_ttl(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = RecordingStore()
    async with running_engine(store, EngineConfig(metadata_ttl_ms=2_000)) as engine:
        await register(engine, wf_def("one", [simple("a", "t")]))
        await start(engine, "one")
        # Written straight into the shared store, as another server process would.
        v2 = wf_def("one", [simple("a", "t"), simple("b", "t")], version=2)
        await store.put_workflow_def("one", 2, codec.encode(v2))
        cached = await engine.get_workflow(await start(engine, "one"))
        assert cached.workflow_version == 1
        fresh = await engine.metadata.workflow_def("one", None, fresh=True)
        assert fresh is not None
        assert fresh.version == 2
        await trio.sleep(2.5)
        later = await engine.get_workflow(await start(engine, "one"))
        assert later.workflow_version == 2


async def test_a_definition_registered_through_this_process_is_used_by_the_next_start(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine(MemoryStore(), EngineConfig(metadata_ttl_ms=60_000)) as engine:
        await register(engine, wf_def("one", [simple("a", "t")]))
        await start(engine, "one")
        await register(engine, wf_def("one", [simple("a", "t")], version=2))
        newer = await engine.get_workflow(await start(engine, "one"))
        assert newer.workflow_version == 2
