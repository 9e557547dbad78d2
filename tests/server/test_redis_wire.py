"""The trio-native Redis connection and the pipeliner: URLs, failures, cancellation.

Rules: real Redis (the `redis_url` fixture skips without it, fails under CI=true) except
for the URL tests; keys are unique per test and deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from redis.exceptions import NoScriptError, ResponseError

from core.errors import BadRequest, Unavailable
from core.store import Commit
from server.stores.redis_batch import ScriptPipeliner
from server.stores.redis_wire import RedisAddress, RedisWire
from tests.server.contract_support import rec
from tests.server.remote_stores import with_query


def test_url_fields_and_the_parameters_podium_honours() -> None:
    a = RedisAddress.from_url(
        "rediss://u:p@h:7000/3?socket_timeout=2.5&socket_connect_timeout=1&ssl_cert_reqs=none"
    )
    assert (a.host, a.port, a.db, a.username, a.password) == ("h", 7000, 3, "u", "p")
    assert (a.tls, a.tls_verify, a.reply_timeout_s, a.connect_timeout_s) == (
        True,
        False,
        2.5,
        1.0,
    )
    unix = RedisAddress.from_url("unix:///run/redis.sock?db=4")
    assert (unix.path, unix.db, unix.tls) == ("/run/redis.sock", 4, False)
    plain = RedisAddress.from_url("redis://127.0.0.1:6379")
    assert (plain.db, plain.tls, plain.reply_timeout_s) == (0, False, None)


def test_an_unsupported_url_parameter_is_refused_with_the_fix() -> None:
    with pytest.raises(BadRequest, match="'health_check_interval' is not supported; use only"):
        RedisAddress.from_url("redis://h:1/0?health_check_interval=3")
    with pytest.raises(BadRequest, match="ssl_cert_reqs must be"):
        RedisAddress.from_url("rediss://h:1/0?ssl_cert_reqs=optional")
    with pytest.raises(BadRequest, match="store URL"):
        RedisAddress.from_url("http://h:1/0")


@pytest.fixture
async def wire(redis_url: str) -> AsyncIterator[RedisWire]:
    w = RedisWire(RedisAddress.from_url(redis_url))
    try:
        yield w
    finally:
        await w.close()


@pytest.fixture
def key() -> str:
    return f"podium-wire-{uuid.uuid4().hex[:12]}"


async def _cleanup(redis_url: str, *keys: str) -> None:
    w = RedisWire(RedisAddress.from_url(redis_url))
    try:
        await w.roundtrip([("DEL", *keys)])
    finally:
        await w.close()


@pytest.mark.redis
async def test_replies_come_in_order_with_errors_as_values(
    wire: RedisWire, redis_url: str, key: str
) -> None:
    try:
        replies = await wire.roundtrip(
            [
                ("SET", key, b"v\x00\xff"),
                ("GET", key),
                ("HGET", key, "f"),  # wrong type: fails this slot only
                ("EVALSHA", "0" * 40, 0),
                ("INCRBY", key + ":n", 5),
                ("RPUSH", key + ":l", "a", 2, 2.5),
                ("LRANGE", key + ":l", 0, -1),
                ("GET", key + ":absent"),
            ]
        )
        assert replies[:2] == [b"OK", b"v\x00\xff"]
        assert isinstance(replies[2], ResponseError)
        assert "WRONGTYPE" in str(replies[2])
        assert isinstance(replies[3], NoScriptError)
        assert replies[4:] == [5, 3, [b"a", b"2", b"2.5"], None]
    finally:
        await _cleanup(redis_url, key, key + ":n", key + ":l")


@pytest.mark.redis
async def test_the_url_database_is_selected(redis_url: str, key: str) -> None:
    in_11 = RedisWire(RedisAddress.from_url(with_path_db(redis_url, 11)))
    in_12 = RedisWire(RedisAddress.from_url(with_path_db(redis_url, 12)))
    try:
        await in_11.roundtrip([("SET", key, "x")])
        assert await in_12.roundtrip([("EXISTS", key)]) == [0]
        assert await in_11.roundtrip([("EXISTS", key), ("DEL", key)]) == [1, 1]
    finally:
        await in_11.close()
        await in_12.close()


def with_path_db(url: str, db: int) -> str:
    from urllib.parse import urlparse, urlunparse

    return urlunparse(urlparse(url)._replace(path=f"/{db}"))


@pytest.mark.redis
async def test_a_killed_connection_fails_one_round_trip_then_reconnects(
    wire: RedisWire, redis_url: str
) -> None:
    (my_id,) = await wire.roundtrip([("CLIENT", "ID")])
    killer = RedisWire(RedisAddress.from_url(redis_url))
    try:
        assert await killer.roundtrip([("CLIENT", "KILL", "ID", my_id)]) == [1]
    finally:
        await killer.close()
    with pytest.raises(Unavailable, match="Redis is unavailable"):
        await wire.roundtrip([("PING",)])
    assert not wire.connected
    assert await wire.roundtrip([("PING",)]) == [b"PONG"]
    assert wire.connects == 2


@pytest.mark.redis
async def test_a_reply_timeout_closes_the_connection(redis_url: str, key: str) -> None:
    w = RedisWire(RedisAddress.from_url(with_query(redis_url, socket_timeout="0.2")))
    try:
        with pytest.raises(Unavailable, match="TooSlowError"):
            await w.roundtrip([("BLPOP", key, 5)])
        assert not w.connected
        assert await w.roundtrip([("PING",)]) == [b"PONG"]
    finally:
        await w.close()


@pytest.mark.redis
async def test_cancelling_mid_round_trip_drops_the_connection(wire: RedisWire, key: str) -> None:
    with trio.move_on_after(0.1):
        await wire.roundtrip([("BLPOP", key, 5)])
    assert not wire.connected  # the stream was mid-reply: it cannot be reused
    assert await wire.roundtrip([("ECHO", "after")]) == [b"after"]


@pytest.mark.redis
async def test_a_wrong_password_is_unavailable_with_the_reason(redis_url: str) -> None:
    from urllib.parse import urlparse, urlunparse

    parsed = urlparse(redis_url)
    with_password = urlunparse(
        parsed._replace(netloc=f"nobody:wrong@{parsed.hostname}:{parsed.port or 6379}")
    )
    w = RedisWire(RedisAddress.from_url(with_password))
    with pytest.raises(Unavailable, match="refused the connection"):
        await w.connect()
    assert not w.connected


@pytest.mark.redis
async def test_unreachable_is_unavailable() -> None:
    w = RedisWire(RedisAddress.from_url("redis://127.0.0.1:1/0?socket_connect_timeout=2"))
    with pytest.raises(Unavailable, match=r"unavailable at redis://127\.0\.0\.1:1/0"):
        await w.roundtrip([("PING",)])


@pytest.mark.redis
async def test_a_request_cancelled_before_it_leaves_never_runs(redis_url: str, key: str) -> None:
    pipeliner = ScriptPipeliner(RedisWire(RedisAddress.from_url(redis_url)), {})
    pipeliner.start()
    try:
        async with trio.open_nursery() as nursery:
            # The drainer is busy with a blocking pop; the INCR waits behind it.
            nursery.start_soon(pipeliner.run, [("BLPOP", key + ":block", 0.3)])
            await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(0.05):
                await pipeliner.run([("INCR", key)])
        assert await pipeliner.run([("GET", key)]) == [None]
        assert pipeliner.round_trips == 2
    finally:
        await pipeliner.close()
        await _cleanup(redis_url, key)


@pytest.mark.redis
async def test_a_closed_pipeliner_refuses_calls(redis_url: str) -> None:
    pipeliner = ScriptPipeliner(RedisWire(RedisAddress.from_url(redis_url)), {})
    pipeliner.start()
    assert await pipeliner.run([("PING",)]) == [b"PONG"]
    await pipeliner.close()
    assert not pipeliner.wire.connected
    with pytest.raises(Unavailable, match="closed"):
        await pipeliner.run([("PING",)])


@pytest.mark.redis
async def test_an_argument_that_cannot_be_sent_fails_only_its_caller(
    redis_url: str, key: str
) -> None:
    pipeliner = ScriptPipeliner(RedisWire(RedisAddress.from_url(redis_url)), {})
    pipeliner.start()
    try:
        good = pipeliner.queue([(None, ("SET", key, "kept"))])
        with pytest.raises(TypeError, match="must be str, int, float or bytes"):
            pipeliner.queue([(None, ("SET", key, None))])
        assert await good.replies_when_done(pipeliner) == [b"OK"]
        assert await pipeliner.run([("GET", key)]) == [b"kept"]
        assert pipeliner.round_trips == 2
    finally:
        await pipeliner.close()
        await _cleanup(redis_url, key)


def test_transient_error_replies_become_unavailable_others_stay_errors() -> None:
    from server.stores.redis_wire import store_error

    for message in (
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script",
        "OOM command not allowed when used memory > 'maxmemory'.",
        "READONLY You can't write against a read only replica.",
        "MASTERDOWN Link with MASTER is down",
    ):
        failure = store_error(ResponseError(message))
        assert isinstance(failure, Unavailable), message
        assert message in str(failure)
    wrong = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert store_error(wrong) is wrong
    assert store_error(ResponseError("ERR unknown command")).__class__ is ResponseError


@pytest.mark.redis
async def test_the_store_raises_transient_error_replies_as_unavailable(redis_url: str) -> None:
    # Unit test: the wire is stubbed to answer every command as an out-of-memory Redis
    # would (making the shared test Redis refuse writes would disturb everything else).
    from server.stores.redis import RedisStore

    store = RedisStore(with_query(redis_url, prefix=f"podium-oom-{uuid.uuid4().hex[:8]}"))
    await store.open()
    try:
        pipeliner = store.pipeliner
        assert pipeliner is not None

        async def refusing(data: bytes, wanted: int) -> list[Any]:
            oom = ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
            return [oom] * wanted

        pipeliner.wire.roundtrip_packed = refusing  # type: ignore[method-assign]
        with pytest.raises(Unavailable, match="OOM"):
            await store.push("q", "m", now_ms=1)  # a script
        with pytest.raises(Unavailable, match="OOM"):
            await store.size("q")  # a command
        (slot,) = await store.commit_many([Commit(record=rec("w1"), expected_version=0)], 1)
        assert isinstance(slot, Unavailable)  # a commit slot
    finally:
        await store.close()


@pytest.mark.redis
async def test_a_pipeliner_used_from_another_trio_run_refuses_instead_of_hanging(
    redis_url: str,
) -> None:
    from core.errors import InternalError

    pipeliner = ScriptPipeliner(RedisWire(RedisAddress.from_url(redis_url)), {})
    pipeliner.start()
    try:

        async def elsewhere() -> None:
            with pytest.raises(InternalError, match="opened in another trio run"):
                await pipeliner.run([("PING",)])

        await trio.to_thread.run_sync(trio.run, elsewhere)
        assert await pipeliner.run([("PING",)]) == [b"PONG"]
    finally:
        await pipeliner.close()
