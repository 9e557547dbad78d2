"""`redis://`: the whole Store on one Redis node, via redis.asyncio on the asyncio bridge.

Rules:
- URL: `redis://[user:pass@]host:port/db?prefix=podium` (also `rediss://`). `prefix`
  (default "podium") starts every key, so several Podiums, or tests, share one database;
  the other query parameters go to redis-py unchanged.
- Every call crosses to the sidecar loop once (server.stores.bridge) and costs one round
  trip: multi-key writes are Lua scripts (server.stores.redis_lua, run by EVALSHA and
  loaded again if the server lost them), reads are single commands or pipelines.
- `commit` = one script that checks the version, writes the record and its indexes and
  applies the queue ops atomically. `commit_many` = those scripts pipelined in one round
  trip; each is atomic on its own, so a conflict fails only its slot. Concurrent commits
  and the single commands and short pipelines of concurrent callers (loads, metadata,
  poll data) share pipelines (server.stores.redis_batch), in submission order.
- Search filters through the status / workflow-name sets when the query's top-level AND
  pins one of them (`status = X`, `status IN (...)`, `workflowType = 'x'`); otherwise it
  reads the index fields of *every* workflow (newest first, pipelined in chunks of
  SEARCH_CHUNK). Either way core.search evaluates the query in Python, so a search costs
  O(candidates) transfer and CPU: fine for admin use, not for a hot path.
- Connection failures surface as core.errors.Unavailable (503, retryable).
- Bodies, texts and ids are bytes in Redis and str/bytes here; nothing is decoded in Lua.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import search
from core.errors import BadRequest, Unavailable, VersionConflict
from core.search import And, Cond, Node
from core.store import DECIDER_QUEUE, Commit, LogLine, PollRecord, SearchRequest, WorkflowRecord
from server.stores.bridge import AsyncioBridge
from server.stores.redis_batch import ScriptPipeliner
from server.stores.redis_lua import SCRIPTS

T = TypeVar("T")

SEARCH_CHUNK = 500
_RECORD_FIELDS = ("n", "wv", "st", "ct", "ut", "et", "c", "pa", "tx", "v")
_encoder = msgspec.msgpack.Encoder()
_poll_decoder = msgspec.msgpack.Decoder(PollRecord)
_log_decoder = msgspec.msgpack.Decoder(LogLine)


def split_url(url: str) -> tuple[str, str]:
    """Split Podium's `prefix` parameter off a redis URL: (url for redis-py, prefix).

    Raises:
        BadRequest: the prefix is empty or holds a space or a glob character (* ? [ ] { }).
    """
    parsed = urlparse(url)
    params = parse_qsl(parsed.query, keep_blank_values=True)
    prefix = "podium"
    rest = []
    for key, value in params:
        if key == "prefix":
            prefix = value
        else:
            rest.append((key, value))
    if not prefix or any(c in prefix for c in " *?[]{}"):
        raise BadRequest(
            f"store URL {url!r}: prefix must be non-empty, without spaces or * ? [ ] {{ }}"
        )
    return urlunparse(parsed._replace(query=urlencode(rest))), prefix


async def _exec(r: aioredis.Redis, *args: Any) -> Any:
    # redis-py leaves execute_command untyped; every reply here is checked by its caller.
    return await r.execute_command(*args)  # type: ignore[no-untyped-call]


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _record(workflow_id: str, fields: list[bytes | None], body: bytes) -> WorkflowRecord:
    n, wv, st, ct, ut, et, c, pa, tx, v = fields
    assert n is not None
    return WorkflowRecord(
        workflow_id=workflow_id,
        workflow_name=n.decode(),
        workflow_version=int(wv or 0),
        status=(st or b"").decode(),
        create_time=int(ct or 0),
        update_time=int(ut or 0),
        end_time=int(et or 0),
        correlation_id=_text(c),
        parent_workflow_id=_text(pa),
        search_text=(tx or b"").decode(),
        body=body,
        version=int(v or 0),
    )


def _commit_args(prefix: str, commit: Commit, now_ms: int) -> list[Any]:
    r = commit.record
    args: list[Any] = [
        prefix,
        now_ms,
        r.workflow_id,
        commit.expected_version,
        r.workflow_name,
        r.workflow_version,
        r.status,
        r.create_time,
        r.update_time,
        r.end_time,
        "" if r.correlation_id is None else "=" + r.correlation_id,
        "" if r.parent_workflow_id is None else "=" + r.parent_workflow_id,
        r.search_text,
        r.body,
        len(commit.added_task_ids),
        len(commit.removed_task_ids),
        len(commit.queue_ops),
        *commit.added_task_ids,
        *commit.removed_task_ids,
    ]
    for op in commit.queue_ops:
        if op.kind not in ("push", "remove", "ack"):
            raise BadRequest(f"queue op kind {op.kind!r}: use push, remove or ack")
        args += (op.kind, op.queue, op.message_id, op.priority, op.delay_ms)
    return args


def _commit_result(commit: Commit, reply: list[int]) -> int:
    ok, version = reply
    if ok:
        return version
    wf_id, expected = commit.record.workflow_id, commit.expected_version
    if expected == 0:
        raise VersionConflict(f"workflow {wf_id} already exists (version {version})")
    if version == 0:
        raise VersionConflict(f"workflow {wf_id} does not exist (expected version {expected})")
    raise VersionConflict(
        f"workflow {wf_id} is at version {version}, not {expected}: reload it and decide again"
    )


class RedisStore:
    """core.store.Store on Redis (one node)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client_url, self.prefix = split_url(url)
        self._bridge: AsyncioBridge | None = None
        self._redis: aioredis.Redis | None = None
        self._sha: dict[str, str] = {}
        # Concurrent commits share pipelines (server.stores.redis_batch).
        self.pipeliner: ScriptPipeliner | None = None

    # ------------------------------------------------------------------ plumbing

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _run(self, factory: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        bridge, client = self._bridge, self._redis
        if bridge is None or client is None:
            raise BadRequest("RedisStore is not open: call `await store.open()` first")
        try:
            return await bridge.run(lambda: factory(client))
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise Unavailable(f"Redis is unavailable: {exc}") from exc

    async def open(self) -> None:
        """Connect (on the bridge) and load the Lua scripts."""
        if self._redis is not None:
            return
        bridge = AsyncioBridge.acquire()
        try:

            async def connect() -> aioredis.Redis:
                client = aioredis.Redis.from_url(self._client_url, decode_responses=False)
                await client.ping()
                return client

            try:
                self._redis = client = await bridge.run(connect)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                raise Unavailable(f"Redis is unavailable at {self._client_url}: {exc}") from exc
            self._bridge = bridge
            await self._load_scripts()
            self.pipeliner = ScriptPipeliner(
                client,
                SCRIPTS["commit"],
                lambda: self._sha["commit"],
                lambda sha: self._sha.__setitem__("commit", sha),
            )
        except BaseException:
            self._redis = None
            self._bridge = None
            bridge.release()
            raise

    async def close(self) -> None:
        bridge, client = self._bridge, self._redis
        if bridge is None or client is None:
            return
        self._bridge = self._redis = None
        self.pipeliner = None
        try:
            await bridge.run(client.aclose)
        finally:
            bridge.release()

    async def _load_scripts(self) -> None:
        async def load(client: aioredis.Redis) -> dict[str, str]:
            return {name: await client.script_load(src) for name, src in SCRIPTS.items()}

        self._sha = await self._run(load)

    async def _eval_on(self, client: aioredis.Redis, script: str, *args: Any) -> Any:
        # asyncio side. NOSCRIPT means the server restarted or ran SCRIPT FLUSH: the script
        # did not run, so loading it again and retrying is safe.
        try:
            return await client.evalsha(self._sha[script], 0, *args)
        except NoScriptError:
            self._sha[script] = await client.script_load(SCRIPTS[script])
            return await client.evalsha(self._sha[script], 0, *args)

    async def _eval(self, script: str, *args: Any) -> Any:
        return await self._run(lambda client: self._eval_on(client, script, self.prefix, *args))

    async def _cmd(self, *args: Any) -> Any:
        """One Redis command, one round trip (shared with concurrent callers)."""
        return (await self._pipe([args]))[0]

    async def _pipe_on(self, r: aioredis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
        # asyncio side: several commands, one round trip (not a transaction).
        if not commands:
            return []
        async with r.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            replies: list[Any] = await pipe.execute()
        return replies

    async def _pipe(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one round trip (not a transaction); raises the first error."""
        pipeliner = self.pipeliner
        if pipeliner is None:
            raise BadRequest("RedisStore is not open: call `await store.open()` first")
        replies = await self._run(lambda _: pipeliner.run(commands))
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    # ------------------------------------------------------------------ metadata

    async def put_task_def(self, name: str, body: bytes) -> None:
        await self._cmd("HSET", self._key("md", "task"), name, body)

    async def get_task_def(self, name: str) -> bytes | None:
        value: bytes | None = await self._cmd("HGET", self._key("md", "task"), name)
        return value

    async def list_task_defs(self) -> list[bytes]:
        return _sorted_values(await self._cmd("HGETALL", self._key("md", "task")))

    async def delete_task_def(self, name: str) -> bool:
        return bool(await self._cmd("HDEL", self._key("md", "task"), name))

    async def put_workflow_def(self, name: str, version: int, body: bytes) -> None:
        await self._pipe(
            [
                ("HSET", self._key("md", "wf", name), str(version), body),
                ("SADD", self._key("md", "wfnames"), name),
            ]
        )

    async def get_workflow_def(self, name: str, version: int | None) -> bytes | None:
        key = self._key("md", "wf", name)
        if version is not None:
            value: bytes | None = await self._cmd("HGET", key, str(version))
            return value
        found: dict[bytes, bytes] = await self._cmd("HGETALL", key)
        return found[max(found, key=int)] if found else None

    async def list_workflow_defs(self) -> list[bytes]:
        async def list_all(r: aioredis.Redis) -> list[Any]:
            names = sorted(await _exec(r, "SMEMBERS", self._key("md", "wfnames")))
            return await self._pipe_on(
                r, [("HGETALL", self._key("md", "wf", n.decode())) for n in names]
            )

        per_name: list[dict[bytes, bytes]] = await self._run(list_all)
        return [versions[v] for versions in per_name for v in sorted(versions, key=int)]

    async def delete_workflow_def(self, name: str, version: int) -> bool:
        # The names set may keep a name whose versions are all gone; listing skips it.
        return bool(await self._cmd("HDEL", self._key("md", "wf", name), str(version)))

    async def put_event_handler(self, name: str, body: bytes) -> None:
        await self._cmd("HSET", self._key("md", "event"), name, body)

    async def get_event_handler(self, name: str) -> bytes | None:
        value: bytes | None = await self._cmd("HGET", self._key("md", "event"), name)
        return value

    async def list_event_handlers(self) -> list[bytes]:
        return _sorted_values(await self._cmd("HGETALL", self._key("md", "event")))

    async def delete_event_handler(self, name: str) -> bool:
        return bool(await self._cmd("HDEL", self._key("md", "event"), name))

    # ------------------------------------------------------------------ executions

    async def commit(self, commit: Commit, now_ms: int) -> int:
        result = (await self.commit_many([commit], now_ms))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def commit_many(self, commits: list[Commit], now_ms: int) -> list[int | Exception]:
        if not commits:
            return []
        pipeliner = self.pipeliner
        if pipeliner is None:
            raise BadRequest("RedisStore is not open: call `await store.open()` first")
        arg_lists = [_commit_args(self.prefix, c, now_ms) for c in commits]
        replies = await self._run(lambda _: pipeliner.submit(arg_lists))
        results: list[int | Exception] = []
        for commit, reply in zip(commits, replies, strict=True):
            if isinstance(reply, Exception):
                results.append(reply)
                continue
            try:
                results.append(_commit_result(commit, reply))
            except VersionConflict as exc:
                results.append(exc)
        return results

    async def load(self, workflow_id: str) -> WorkflowRecord | None:
        return (await self.load_many([workflow_id]))[0]

    async def load_many(self, workflow_ids: list[str]) -> list[WorkflowRecord | None]:
        fields = (*_RECORD_FIELDS, "b")
        rows = await self._pipe([("HMGET", self._key("wf", w), *fields) for w in workflow_ids])
        return [
            None if row[0] is None else _record(wid, row[:-1], row[-1] or b"")
            for wid, row in zip(workflow_ids, rows, strict=True)
        ]

    async def delete(self, workflow_id: str) -> bool:
        return bool(await self._eval("delete", workflow_id, DECIDER_QUEUE))

    async def workflow_id_for_task(self, task_id: str) -> str | None:
        return _text(await self._cmd("HGET", self._key("taskwf"), task_id))

    async def running_ids(self, workflow_name: str, workflow_version: int | None) -> list[str]:
        key = self._key("wfs", "open", workflow_name)
        if workflow_version is None:
            ids = await self._cmd("ZRANGE", key, 0, -1)
        else:
            ids = await self._cmd("ZRANGEBYSCORE", key, workflow_version, workflow_version)
        return sorted(i.decode() for i in ids)

    async def ids_by_correlation(
        self, workflow_name: str, correlation_id: str, include_closed: bool
    ) -> list[str]:
        ids = await self._eval(
            "by_correlation", workflow_name, correlation_id, "1" if include_closed else "0"
        )
        return sorted(i.decode() for i in ids)

    async def search(self, request: SearchRequest) -> tuple[int, list[WorkflowRecord]]:
        node = search.parse_query(request.query)
        terms = search.parse_free_text(request.free_text)
        keys = search.parse_sort(request.sort)
        index_keys = self._candidate_sets(node)

        async def gather(r: aioredis.Redis) -> list[WorkflowRecord]:
            if index_keys is None:
                raw = await _exec(r, "ZRANGE", self._key("wfs", "time"), 0, -1)
            else:
                raw = await _exec(r, "SUNION", *index_keys)
            ids = [i.decode() for i in raw]
            hits: list[WorkflowRecord] = []
            for start in range(0, len(ids), SEARCH_CHUNK):
                chunk = ids[start : start + SEARCH_CHUNK]
                rows = await self._pipe_on(
                    r, [("HMGET", self._key("wf", w), *_RECORD_FIELDS) for w in chunk]
                )
                for wid, row in zip(chunk, rows, strict=True):
                    if row[0] is None:  # deleted between the index read and the fetch
                        continue
                    rec = _record(wid, row, b"")
                    if search.matches(node, rec) and search.free_text_matches(terms, rec):
                        hits.append(rec)
            return hits

        hits = await self._run(gather)
        page = search.sort_rows(hits, keys)[request.start : request.start + request.size]
        return len(hits), page

    def _candidate_sets(self, node: Node | None) -> list[str] | None:
        """Index sets whose union holds every match, or None (scan everything)."""
        conds: list[Cond] = []
        pending: list[Node] = [] if node is None else [node]
        while pending:  # the top-level AND chain only: an OR branch can match anything
            n = pending.pop()
            if isinstance(n, And):
                pending += (n.left, n.right)
            elif isinstance(n, Cond):
                conds.append(n)
        for cond in conds:
            name, op, values = cond.field.name, cond.op, cond.values
            if name == "status" and op in ("=", "IN") and not any("*" in str(v) for v in values):
                return [self._key("wfs", "st", str(v)) for v in values]
        for cond in conds:
            name, op, values = cond.field.name, cond.op, cond.values
            wildcard = any("*" in str(v) for v in values)
            if name == "workflowType" and op in ("=", "IN") and not wildcard:
                return [self._key("wfs", "name", str(v)) for v in values]
        return None

    # ------------------------------------------------------------------ queues

    async def push(
        self, queue: str, message_id: str, *, priority: int = 0, delay_ms: int = 0, now_ms: int
    ) -> None:
        await self._eval("push", queue, message_id, priority, now_ms + delay_ms)

    async def pop(self, queue: str, count: int, *, unack_ms: int, now_ms: int) -> list[str]:
        if count <= 0:
            return []
        ids = await self._eval("pop", queue, count, now_ms, unack_ms)
        return [i.decode() for i in ids]

    async def ack(self, queue: str, message_id: str) -> bool:
        return bool(await self._eval("remove", queue, message_id))

    async def remove(self, queue: str, message_id: str) -> bool:
        return bool(await self._eval("remove", queue, message_id))

    async def postpone(
        self, queue: str, message_id: str, *, delay_ms: int, priority: int = 0, now_ms: int
    ) -> None:
        await self._eval("push", queue, message_id, priority, now_ms + delay_ms)

    async def contains(self, queue: str, message_id: str) -> bool:
        return bool(await self._cmd("HEXISTS", self._key("qm", queue), message_id))

    async def size(self, queue: str) -> int:
        return int(await self._cmd("ZCARD", self._key("q", queue)))

    async def sizes(self) -> dict[str, int]:
        async def all_sizes(r: aioredis.Redis) -> list[tuple[str, int]]:
            raw = await _exec(r, "SMEMBERS", self._key("queues"))
            names = sorted(n.decode() for n in raw)
            counts = await self._pipe_on(r, [("ZCARD", self._key("q", n)) for n in names])
            return list(zip(names, counts, strict=True))

        return {name: int(c) for name, c in await self._run(all_sizes) if c}

    async def peek(self, queue: str, count: int) -> list[str]:
        if count <= 0:
            return []
        members = await self._cmd("ZRANGE", self._key("q", queue), 0, count - 1)
        return [m[16:].decode() for m in members]

    # ------------------------------------------------------------------ workers

    async def record_poll(self, record: PollRecord) -> None:
        await self._pipe(
            [
                (
                    "HSET",
                    self._key("poll", record.queue_name),
                    record.domain or "",
                    _encoder.encode(record),
                ),
                ("SADD", self._key("pollqueues"), record.queue_name),
            ]
        )

    async def poll_data(self, task_type: str | None) -> list[PollRecord]:
        async def read(r: aioredis.Redis) -> list[Any]:
            if task_type is not None:
                names = [task_type]
            else:
                raw = await _exec(r, "SMEMBERS", self._key("pollqueues"))
                names = [n.decode() for n in raw]
            return await self._pipe_on(r, [("HVALS", self._key("poll", n)) for n in names])

        per_queue: list[list[bytes]] = await self._run(read)
        rows = [_poll_decoder.decode(b) for bodies in per_queue for b in bodies]
        return sorted(rows, key=lambda p: (p.queue_name, p.domain or ""))

    async def add_logs(self, lines: list[LogLine]) -> None:
        await self._pipe(
            [("RPUSH", self._key("log", ln.task_id), _encoder.encode(ln)) for ln in lines]
        )

    async def get_logs(self, task_id: str) -> list[LogLine]:
        raw = await self._cmd("LRANGE", self._key("log", task_id), 0, -1)
        return [_log_decoder.decode(b) for b in raw]


def _sorted_values(found: dict[bytes, bytes]) -> list[bytes]:
    return [found[k] for k in sorted(found)]
