"""`redis://`: the whole Store on one Redis node, over a trio-native pipelined connection.

Rules:
- URL: `redis://[user:pass@]host:port/db?prefix=podium` (also `rediss://` and `unix://`).
  `prefix` (default "podium") starts every key, so several Podiums, or tests, share one
  database; server.stores.redis_wire lists the other query parameters it honours.
- All traffic goes through one connection owned by server.stores.redis_batch: concurrent
  calls (commits, loads, metadata, poll data, queue scripts) share round trips, in
  submission order. Multi-key writes are Lua scripts (server.stores.redis_lua, run by
  EVALSHA and loaded again if the server lost them); reads are single commands or pipelines.
- `commit` = one script that checks the version, writes the record and its indexes and
  applies the queue ops atomically. `commit_many` = those scripts in one round trip; each
  is atomic on its own, so a conflict fails only its slot.
- Search filters through the status / workflow-name sets when the query's top-level AND
  pins one of them (`status = X`, `status IN (...)`, `workflowType = 'x'`); otherwise it
  reads the index fields of *every* workflow (newest first, pipelined in chunks of
  SEARCH_CHUNK). Either way core.search evaluates the query in Python, so a search costs
  O(candidates) transfer and CPU: fine for admin use, not for a hot path.
- Connection failures surface as core.errors.Unavailable (503, retryable).
- Bodies, texts and ids are bytes in Redis and str/bytes here; nothing is decoded in Lua.
- Definitions (core/store.py) are stored once per ref (P:def:<ref>, SET NX by the commit
  script). A commit sends the definition's bytes unless this store has seen the ref
  stored (a commit carrying it succeeded, or a load read it); loads read definitions
  this store has not cached yet in one more round trip.
  Replies are raw RESP2 (hiredis): HGETALL is a flat field/value list, SMEMBERS a list.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import msgspec

from core import search
from core.errors import BadRequest, Unavailable, VersionConflict
from core.search import And, Cond, Node
from core.store import DECIDER_QUEUE, Commit, LogLine, PollRecord, SearchRequest, WorkflowRecord
from server.stores.definitions import StoredDefinitions
from server.stores.redis_batch import ScriptPipeliner
from server.stores.redis_lua import SCRIPTS
from server.stores.redis_wire import RedisAddress, RedisWire, store_error

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


def _commit_args(
    prefix: str, commit: Commit, now_ms: int, known_refs: Container[str] = ()
) -> list[Any]:
    r = commit.record
    ref = r.definition_ref
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
        ref,
        b"" if not ref or ref in known_refs else r.definition,
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
        self._address = RedisAddress.from_url(self._client_url)
        # All traffic, shared by concurrent callers (server.stores.redis_batch).
        self.pipeliner: ScriptPipeliner | None = None
        # Definitions known to be stored (server.stores.definitions).
        self._definitions = StoredDefinitions()

    # ------------------------------------------------------------------ plumbing

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _open_pipeliner(self) -> ScriptPipeliner:
        pipeliner = self.pipeliner
        if pipeliner is None:
            raise BadRequest("RedisStore is not open: call `await store.open()` first")
        return pipeliner

    async def open(self) -> None:
        """Connect, check the server answers, and start the pipeliner's drainer."""
        if self.pipeliner is not None:
            return
        wire = RedisWire(self._address)
        pipeliner = ScriptPipeliner(wire, SCRIPTS)
        pipeliner.start()
        try:
            (pong,) = await pipeliner.run([("PING",)])
            if isinstance(pong, Exception):
                raise Unavailable(f"Redis at {self._address.describe()} refused PING: {pong}")
        except BaseException:
            await pipeliner.close()
            raise
        self.pipeliner = pipeliner

    async def close(self) -> None:
        pipeliner, self.pipeliner = self.pipeliner, None
        if pipeliner is not None:
            await pipeliner.close()

    async def _eval(self, script: str, *args: Any) -> Any:
        """One call of a Lua script (shares a round trip with concurrent callers)."""
        (reply,) = await self._open_pipeliner().call(script, [[self.prefix, *args]])
        if isinstance(reply, Exception):
            raise store_error(reply)
        return reply

    async def _cmd(self, *args: Any) -> Any:
        """One Redis command, one round trip (shared with concurrent callers)."""
        return (await self._pipe([args]))[0]

    async def _pipe(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one round trip (not a transaction); raises the first error."""
        if not commands:
            return []
        replies = await self._open_pipeliner().run(commands)
        for reply in replies:
            if isinstance(reply, Exception):
                raise store_error(reply)
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
        found = _pairs(await self._cmd("HGETALL", key))
        return found[max(found, key=int)] if found else None

    async def list_workflow_defs(self) -> list[bytes]:
        names = sorted(await self._cmd("SMEMBERS", self._key("md", "wfnames")))
        replies = await self._pipe([("HGETALL", self._key("md", "wf", n.decode())) for n in names])
        per_name = [_pairs(flat) for flat in replies]
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
        pipeliner = self._open_pipeliner()
        known = self._definitions
        arg_lists = [_commit_args(self.prefix, c, now_ms, known) for c in commits]
        replies = await pipeliner.call("commit", arg_lists)
        results: list[int | Exception] = []
        for commit, reply in zip(commits, replies, strict=True):
            if isinstance(reply, Exception):
                results.append(store_error(reply))
                continue
            try:
                results.append(_commit_result(commit, reply))
            except VersionConflict as exc:
                results.append(exc)
        known.remember_committed(commits, results)
        return results

    async def load(self, workflow_id: str) -> WorkflowRecord | None:
        return (await self.load_many([workflow_id]))[0]

    async def load_many(self, workflow_ids: list[str]) -> list[WorkflowRecord | None]:
        fields = (*_RECORD_FIELDS, "b", "d")
        rows = await self._pipe([("HMGET", self._key("wf", w), *fields) for w in workflow_ids])
        records: list[WorkflowRecord | None] = []
        for wid, row in zip(workflow_ids, rows, strict=True):
            if row[0] is None:
                records.append(None)
                continue
            record = _record(wid, row[:-2], row[-2] or b"")
            record.definition_ref = (row[-1] or b"").decode()
            records.append(record)
        await self._definitions.fill(records, self._read_definitions)
        return records

    async def _read_definitions(self, refs: list[str]) -> dict[str, bytes]:
        found = await self._pipe([("GET", self._key("def", ref)) for ref in refs])
        return {ref: d for ref, d in zip(refs, found, strict=True) if d is not None}

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

        if index_keys is None:
            raw = await self._cmd("ZRANGE", self._key("wfs", "time"), 0, -1)
        else:
            raw = await self._cmd("SUNION", *index_keys)
        ids = [i.decode() for i in raw]
        hits: list[WorkflowRecord] = []
        for start in range(0, len(ids), SEARCH_CHUNK):
            chunk = ids[start : start + SEARCH_CHUNK]
            rows = await self._pipe([("HMGET", self._key("wf", w), *_RECORD_FIELDS) for w in chunk])
            for wid, row in zip(chunk, rows, strict=True):
                if row[0] is None:  # deleted between the index read and the fetch
                    continue
                rec = _record(wid, row, b"")
                if search.matches(node, rec) and search.free_text_matches(terms, rec):
                    hits.append(rec)
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
        names = sorted(n.decode() for n in await self._cmd("SMEMBERS", self._key("queues")))
        counts = await self._pipe([("ZCARD", self._key("q", n)) for n in names])
        return {name: int(c) for name, c in zip(names, counts, strict=True) if c}

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
        if task_type is not None:
            names = [task_type]
        else:
            names = [n.decode() for n in await self._cmd("SMEMBERS", self._key("pollqueues"))]
        per_queue: list[list[bytes]] = await self._pipe(
            [("HVALS", self._key("poll", n)) for n in names]
        )
        rows = [_poll_decoder.decode(b) for bodies in per_queue for b in bodies]
        return sorted(rows, key=lambda p: (p.queue_name, p.domain or ""))

    async def add_logs(self, lines: list[LogLine]) -> None:
        await self._pipe(
            [("RPUSH", self._key("log", ln.task_id), _encoder.encode(ln)) for ln in lines]
        )

    async def get_logs(self, task_id: str) -> list[LogLine]:
        raw = await self._cmd("LRANGE", self._key("log", task_id), 0, -1)
        return [_log_decoder.decode(b) for b in raw]


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """An HGETALL reply (field, value, field, value, ...) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _sorted_values(flat: list[bytes]) -> list[bytes]:
    found = _pairs(flat)
    return [found[k] for k in sorted(found)]
