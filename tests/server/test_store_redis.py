"""RedisStore beyond the contract: key prefixes, script reloading, round trips, processes.

Rules: real Redis (the `redis_url` fixture skips without it, fails under CI=true); each
test uses its own key prefix and deletes it afterwards, so the shared database is left
as it was found.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
import trio

from core.errors import BadRequest, Unavailable, VersionConflict
from core.store import Commit, QueueOp, WorkflowRecord
from server.stores.bridge import AsyncioBridge
from server.stores.redis import RedisStore, split_url
from tests.server.remote_stores import REPO, drop_redis_prefix, with_query

pytestmark = pytest.mark.redis
T0 = 1_700_000_000_000


def rec(wf_id: str, *, body: bytes = b"{}", status: str = "RUNNING") -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=wf_id,
        workflow_name="order",
        workflow_version=1,
        status=status,
        create_time=T0,
        update_time=T0,
        body=body,
    )


async def _open(redis_url: str, prefix: str) -> RedisStore:
    store = RedisStore(with_query(redis_url, prefix=prefix))
    await store.open()
    return store


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    name = f"podium-t-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        await drop_redis_prefix(redis_url, name)


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[RedisStore]:
    s = await _open(redis_url, prefix)
    try:
        yield s
    finally:
        await s.close()


async def _keys(redis_url: str, pattern: str) -> list[str]:
    async def scan() -> list[str]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return sorted([k.decode() async for k in client.scan_iter(match=pattern, count=1000)])
        finally:
            await client.aclose()

    bridge = AsyncioBridge.acquire()
    try:
        return await bridge.run(scan)
    finally:
        bridge.release()


def test_url_prefix_is_split_off_and_checked() -> None:
    assert split_url("redis://h:1/2?prefix=abc&socket_timeout=5") == (
        "redis://h:1/2?socket_timeout=5",
        "abc",
    )
    assert split_url("redis://h:1/0") == ("redis://h:1/0", "podium")
    with pytest.raises(BadRequest, match="prefix must be non-empty"):
        split_url("redis://h/0?prefix=a*b")


async def test_every_key_lives_under_the_prefix_and_prefixes_isolate(
    redis_url: str, store: RedisStore, prefix: str
) -> None:
    await store.commit(
        Commit(
            record=rec("w1"),
            expected_version=0,
            added_task_ids=["t1"],
            queue_ops=[QueueOp(kind="push", queue="tasks", message_id="t1")],
        ),
        T0,
    )
    await store.put_task_def("td", b"{}")
    keys = await _keys(redis_url, f"{prefix}:*")
    assert f"{prefix}:wf:w1" in keys
    assert f"{prefix}:q:tasks" in keys
    assert all(k.startswith(prefix + ":") for k in keys)

    other_prefix = f"{prefix}-other"
    other = await _open(redis_url, other_prefix)
    try:
        assert await other.load("w1") is None
        assert await other.size("tasks") == 0
        assert await other.get_task_def("td") is None
        assert await other.workflow_id_for_task("t1") is None
    finally:
        await other.close()
        await drop_redis_prefix(redis_url, other_prefix)


async def test_scripts_are_reloaded_after_the_server_forgets_them(store: RedisStore) -> None:
    # As after a restart, but only for this store (SCRIPT FLUSH would hit every user).
    pipeliner = store.pipeliner
    assert pipeliner is not None
    real = dict(pipeliner.sha)
    pipeliner.sha = {name: "0" * 40 for name in pipeliner.sha}
    assert await store.commit(Commit(record=rec("w1"), expected_version=0), T0) == 1
    assert pipeliner.sha["commit"] == real["commit"]
    pipeliner.sha = {name: "0" * 40 for name in pipeliner.sha}  # again, for a batch
    results = await store.commit_many(
        [
            Commit(record=rec("w1", body=b"2"), expected_version=1),
            Commit(record=rec("w2"), expected_version=0),
        ],
        T0,
    )
    assert results == [2, 1]
    await store.push("q", "m", now_ms=T0)
    assert await store.pop("q", 1, unack_ms=10, now_ms=T0) == ["m"]


async def test_commit_many_is_one_round_trip_with_per_slot_results(store: RedisStore) -> None:
    await store.commit(Commit(record=rec("w1"), expected_version=0), T0)
    pipeliner = store.pipeliner
    assert pipeliner is not None
    before = pipeliner.round_trips
    results = await store.commit_many(
        [
            Commit(record=rec("w1", body=b"a"), expected_version=1),
            Commit(record=rec("w1", body=b"b"), expected_version=1),  # stale after the first
            Commit(record=rec("w2"), expected_version=0),
        ],
        T0,
    )
    assert pipeliner.round_trips - before == 1
    assert results[0] == 2
    assert isinstance(results[1], VersionConflict)
    assert results[2] == 1
    loaded = await store.load("w1")
    assert loaded is not None
    assert loaded.body == b"a"


async def test_commits_from_concurrent_callers_share_one_pipeline(store: RedisStore) -> None:
    from server.stores.redis import _commit_args

    pipeliner = store.pipeliner
    assert pipeliner is not None
    commits = [Commit(record=rec(f"w{i}"), expected_version=0) for i in range(20)]
    commits.append(Commit(record=rec("w3"), expected_version=0))  # loses: w3 exists by then
    arg_lists = [_commit_args(store.prefix, c, T0) for c in commits]
    before = (pipeliner.round_trips, pipeliner.script_calls)
    # 21 callers queue before the drainer wakes (one step: nothing awaits in between).
    requests = [pipeliner.queue([("commit", a)]) for a in arg_lists]
    replies = [await r.replies_when_done(pipeliner) for r in requests]
    assert (pipeliner.round_trips - before[0], pipeliner.script_calls - before[1]) == (1, 21)
    assert [r[0] for r in replies] == [[1, 1]] * 20 + [[0, 1]]
    assert len(await store.running_ids("order", None)) == 20


async def test_reads_and_commits_of_concurrent_callers_share_one_pipeline_in_order(
    store: RedisStore,
) -> None:
    from server.stores.redis import _commit_args

    pipeliner = store.pipeliner
    assert pipeliner is not None
    wf_key = f"{store.prefix}:wf:w1"
    commit_args = _commit_args(store.prefix, Commit(record=rec("w1"), expected_version=0), T0)
    before = (pipeliner.round_trips, pipeliner.script_calls)
    # Queued in one step, before the drainer wakes: a read, the commit, a read after it.
    requests = [
        pipeliner.queue([(None, ("HGET", wf_key, "v"))]),
        pipeliner.queue([("commit", commit_args)]),
        pipeliner.queue([(None, ("HGET", wf_key, "v")), (None, ("HGET", wf_key, "st"))]),
    ]
    first, committed, after = [await r.replies_when_done(pipeliner) for r in requests]
    assert (pipeliner.round_trips - before[0], pipeliner.script_calls - before[1]) == (1, 1)
    assert first == [None]
    assert committed == [[1, 1]]
    assert after == [b"1", b"RUNNING"]


async def test_an_error_reply_raises_for_its_caller_only(store: RedisStore) -> None:
    from redis.exceptions import ResponseError

    await store.push("q", "m1", now_ms=T0)
    wrong_type = store._pipe([("HGET", f"{store.prefix}:q:q", "x")])  # q:q is a sorted set
    results: dict[str, Any] = {}

    async def read_wrong() -> None:
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await wrong_type

    async def read_size() -> None:
        results["size"] = await store.size("q")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_wrong)
        nursery.start_soon(read_size)
    assert results == {"size": 1}
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await store._cmd("HGET", f"{store.prefix}:q:q", "x")


async def test_priority_outside_0_999_is_clamped(store: RedisStore) -> None:
    await store.push("q", "low", priority=-5, now_ms=T0)
    await store.push("q", "high", priority=5000, now_ms=T0)
    await store.push("q", "mid", priority=500, now_ms=T0)
    assert await store.pop("q", 3, unack_ms=10, now_ms=T0) == ["high", "mid", "low"]


async def test_another_process_sees_committed_state(store: RedisStore) -> None:
    await store.commit(
        Commit(
            record=rec("w1", body=b"hello"),
            expected_version=0,
            added_task_ids=["t1"],
            queue_ops=[QueueOp(kind="push", queue="tasks", message_id="t1")],
        ),
        T0,
    )
    out = await trio.to_thread.run_sync(_read_in_subprocess, store.url)
    assert out == {"body": "hello", "version": 1, "task_owner": "w1", "popped": ["t1"]}


def _read_in_subprocess(url: str) -> dict[str, Any]:
    script = f"""
import json, trio
from server.stores.redis import RedisStore
async def main():
    s = RedisStore({url!r})
    await s.open()
    r = await s.load("w1")
    out = {{"body": r.body.decode(), "version": r.version,
            "task_owner": await s.workflow_id_for_task("t1"),
            "popped": await s.pop("tasks", 5, unack_ms=1000, now_ms={T0})}}
    await s.close()
    print(json.dumps(out))
trio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def test_search_uses_the_status_index_and_still_filters(store: RedisStore) -> None:
    for wf_id, status in [("a", "RUNNING"), ("b", "FAILED"), ("c", "FAILED")]:
        await store.commit(Commit(record=rec(wf_id, status=status), expected_version=0), T0)
    # The status set narrows to b, c; the rest of the query is evaluated on them.
    assert store._candidate_sets(_parse("status = FAILED AND workflowId = 'c'")) == [
        f"{store.prefix}:wfs:st:FAILED"
    ]
    total, rows = await store.search(_request("status = FAILED AND workflowId = 'c'"))
    assert (total, [r.workflow_id for r in rows]) == (1, ["c"])
    # An OR cannot be narrowed by one branch: full scan, same answer as the reference.
    assert store._candidate_sets(_parse("status = FAILED OR workflowId = 'a'")) is None
    total, rows = await store.search(_request("status = FAILED OR workflowId = 'a'"))
    assert total == 3


def _parse(query: str) -> Any:
    from core.search import parse_query

    return parse_query(query)


def _request(query: str) -> Any:
    from core.store import SearchRequest

    return SearchRequest(query=query, sort="workflowId:ASC")


async def test_an_unreachable_server_is_unavailable_not_a_crash() -> None:
    store = RedisStore("redis://127.0.0.1:1/0?prefix=nowhere")
    with pytest.raises(Unavailable, match="Redis is unavailable"):
        await store.open()
    with pytest.raises(BadRequest, match="not open"):
        await store.load("w1")


async def test_a_definition_is_one_key_sent_once_per_store(
    redis_url: str, store: RedisStore, prefix: str
) -> None:
    import msgspec

    from server.stores.redis import _commit_args

    def with_def(wf_id: str) -> WorkflowRecord:
        return msgspec.structs.replace(rec(wf_id), definition_ref="r1", definition=b"d1")

    first = Commit(record=with_def("w1"), expected_version=0)
    assert b"d1" in _commit_args(store.prefix, first, T0, store._definitions)
    await store.commit(first, T0)
    later = Commit(record=with_def("w2"), expected_version=0)
    # Known to be stored now: the next commit names it without sending it again.
    assert b"d1" not in _commit_args(store.prefix, later, T0, store._definitions)
    await store.commit(later, T0)
    keys = await _keys(redis_url, f"{prefix}:def:*")
    assert keys == [f"{prefix}:def:r1"]
    fresh = await _open(redis_url, prefix)  # a cold cache reads it from Redis
    try:
        loaded = await fresh.load_many(["w1", "w2"])
        assert [(r.definition_ref, r.definition) for r in loaded if r] == [("r1", b"d1")] * 2
    finally:
        await fresh.close()
