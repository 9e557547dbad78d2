"""`postgresql://`: the whole Store on PostgreSQL via asyncpg on the asyncio bridge.

Rules:
- URL: a libpq-style DSN plus Podium's own parameters, removed before asyncpg sees it:
  `schema` (default "podium"; every table lives there, so tests and tenants isolate by
  schema), `pool_size` (default 10), `commit_batch` (most commits per group-commit
  transaction, default 128; 1 turns grouping off) and `commit_in_flight` (group-commit
  transactions at once, default 1). Other parameters go to asyncpg, which passes unknown
  ones to the server as settings (e.g. `synchronous_commit=off`). Example:
  `postgresql://podium@db:5432/podium?schema=podium&pool_size=20`.
- `open()` creates and migrates the schema itself (server.stores.pg_migrations; safe with
  concurrent openers); nobody runs SQL by hand.
- Every call crosses to the sidecar loop once and is one statement, so one round trip and
  (outside explicit batches) one implicit transaction: commits go through the group
  committer (server.stores.pg_group_commit: concurrent commits share a transaction);
  `pop` is one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)` (the pop_messages
  function) so concurrent poppers, in this process or others, never get the same
  message; it commits without waiting for the WAL flush (a lost pop only redelivers).
- Queue rows keep (deliver_at, priority, seq); pop order is deliver_at, then priority
  descending, then seq. A pop moves deliver_at to now + unack_ms: an unacknowledged
  message comes back by itself. ack and remove both delete the row.
- Search renders core.search's AST to SQL (server.stores.sql_search, postgres dialect);
  values are always bound parameters.
- Connection failures surface as core.errors.Unavailable (503, retryable).
- Definitions (core/store.py) are stored once per ref in definition_blob, written before
  the first commit of this store that names them; rows carry the ref in an envelope in
  their `body` column (server.stores.pg_group_commit.row_body). Loads read the
  definitions this store has not cached yet in one more query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import asyncpg
import msgspec

from core import search as query_lang
from core.errors import BadRequest, Unavailable
from core.store import DECIDER_QUEUE, Commit, LogLine, PollRecord, SearchRequest, WorkflowRecord
from server.stores import sql_search
from server.stores.bridge import AsyncioBridge
from server.stores.definitions import StoredDefinitions
from server.stores.pg_group_commit import GroupCommitter, split_row_body
from server.stores.pg_migrations import TERMINAL_SQL, check_schema_name, migrate

T = TypeVar("T")

_INDEX_COLUMNS = (
    "workflow_id, workflow_name, workflow_version, status, create_time, update_time, "
    "end_time, correlation_id, parent_workflow_id, search_text, version"
)
_encoder = msgspec.msgpack.Encoder()
_poll_decoder = msgspec.msgpack.Decoder(PollRecord)
_CONNECTION_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)

_POP = "SELECT message_id, deliver_at, priority, seq FROM pop_messages($1, $2, $3, $4)"
_PUSH = """
INSERT INTO queue_message (queue, message_id, priority, deliver_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (queue, message_id) DO UPDATE SET
    priority = EXCLUDED.priority, deliver_at = EXCLUDED.deliver_at, seq = EXCLUDED.seq
"""
_DELETE_WORKFLOW = """
WITH w AS (DELETE FROM workflow WHERE workflow_id = $1 RETURNING workflow_id),
t AS (DELETE FROM task_index WHERE workflow_id IN (SELECT workflow_id FROM w)),
q AS (DELETE FROM queue_message
      WHERE queue = $2 AND message_id IN (SELECT workflow_id FROM w))
SELECT count(*) FROM w
"""


@dataclass(frozen=True, slots=True)
class PgOptions:
    """Podium's own URL parameters (everything else goes to asyncpg / the server)."""

    dsn: str
    schema: str = "podium"
    pool_size: int = 10
    commit_batch: int = 128  # most commits per group-commit transaction; 1 = no grouping
    commit_in_flight: int = 1  # group-commit transactions running at once


_INT_OPTIONS = {"pool_size": (1, 1000), "commit_batch": (1, 10_000), "commit_in_flight": (1, 64)}


def parse_url(url: str) -> PgOptions:
    """Split Podium's parameters (`schema`, `pool_size`, `commit_batch`,
    `commit_in_flight`) off a PostgreSQL URL.

    Raises:
        BadRequest: a bad schema name or an integer parameter out of range.
    """
    parsed = urlparse(url)
    schema = "podium"
    ints: dict[str, int] = {}
    rest = []
    for key, value in parse_qsl(parsed.query, keep_blank_values=True):
        if key == "schema":
            schema = value
        elif key in _INT_OPTIONS:
            low, high = _INT_OPTIONS[key]
            if not value.isdigit() or not low <= int(value) <= high:
                raise BadRequest(
                    f"store URL: {key} must be an integer {low}..{high}, got {value!r}"
                )
            ints[key] = int(value)
        else:
            rest.append((key, value))
    dsn = urlunparse(parsed._replace(scheme="postgresql", query=urlencode(rest)))
    return PgOptions(dsn=dsn, schema=check_schema_name(schema), **ints)


def _loaded(row: Any) -> WorkflowRecord:
    body, ref = split_row_body(row["body"])
    record = _record(row, body)
    record.definition_ref = ref  # its definition: StoredDefinitions.fill
    return record


def _record(row: Any, body: bytes = b"") -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=row["workflow_id"],
        workflow_name=row["workflow_name"],
        workflow_version=row["workflow_version"],
        status=row["status"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        end_time=row["end_time"],
        correlation_id=row["correlation_id"],
        parent_workflow_id=row["parent_workflow_id"],
        search_text=row["search_text"],
        body=body,
        version=row["version"],
    )


async def _keep_session(conn: Any) -> None:
    """Pool reset hook: nothing to undo.

    asyncpg's default reset sends `RESET ALL; UNLISTEN *; CLOSE ALL; ...` after every
    release, one extra round trip per call. Podium leaves no session state behind (no
    LISTEN, no session SET or advisory lock, no open cursor; settings are transaction-
    local), and an open transaction is still rolled back by asyncpg itself.
    """


class PostgresStore:
    """core.store.Store on PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.options = options = parse_url(url)
        self._dsn, self.schema, self._pool_size = options.dsn, options.schema, options.pool_size
        self._bridge: AsyncioBridge | None = None
        self._pool: Any = None
        self.committer: GroupCommitter | None = None
        # Definitions known to be in definition_blob (server.stores.definitions).
        self._definitions = StoredDefinitions()

    # ------------------------------------------------------------------ plumbing

    async def _run(self, factory: Callable[[Any], Awaitable[T]]) -> T:
        bridge, pool = self._bridge, self._pool
        if bridge is None or pool is None:
            raise BadRequest("PostgresStore is not open: call `await store.open()` first")
        try:
            return await bridge.run(lambda: factory(pool))
        except _CONNECTION_ERRORS as exc:
            raise Unavailable(f"PostgreSQL is unavailable: {exc}") from exc

    async def open(self) -> None:
        """Connect, create or migrate the schema, start the pool."""
        if self._pool is not None:
            return
        bridge = AsyncioBridge.acquire()
        try:
            self._pool = await bridge.run(self._connect)
        except BaseException:
            bridge.release()
            raise
        self._bridge = bridge
        self.committer = GroupCommitter(
            self._pool,
            max_batch=self.options.commit_batch,
            max_in_flight=self.options.commit_in_flight,
        )

    async def _connect(self) -> Any:
        try:
            conn = await asyncpg.connect(self._dsn)
            try:
                await migrate(conn, self.schema)
            finally:
                await conn.close()
            return await asyncpg.create_pool(
                self._dsn,
                min_size=min(2, self._pool_size),
                max_size=self._pool_size,
                server_settings={"search_path": self.schema},
                reset=_keep_session,
            )
        except _CONNECTION_ERRORS as exc:
            raise Unavailable(f"PostgreSQL is unavailable: {exc}") from exc

    async def close(self) -> None:
        bridge, pool = self._bridge, self._pool
        if bridge is None or pool is None:
            return
        self._bridge = self._pool = None
        try:
            await bridge.run(pool.close)
        finally:
            bridge.release()

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self._run(lambda p: p.fetch(sql, *args))
        return rows

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run(lambda p: p.fetchval(sql, *args))

    async def _execute(self, sql: str, *args: Any) -> str:
        status: str = await self._run(lambda p: p.execute(sql, *args))
        return status

    # ------------------------------------------------------------------ metadata

    async def put_task_def(self, name: str, body: bytes) -> None:
        await self._execute(
            "INSERT INTO task_def VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET body = $2",
            name,
            body,
        )

    async def get_task_def(self, name: str) -> bytes | None:
        value: bytes | None = await self._fetchval(
            "SELECT body FROM task_def WHERE name = $1", name
        )
        return value

    async def list_task_defs(self) -> list[bytes]:
        rows = await self._fetch('SELECT body FROM task_def ORDER BY name COLLATE "C"')
        return [r["body"] for r in rows]

    async def delete_task_def(self, name: str) -> bool:
        return await self._execute("DELETE FROM task_def WHERE name = $1", name) != "DELETE 0"

    async def put_workflow_def(self, name: str, version: int, body: bytes) -> None:
        await self._execute(
            "INSERT INTO workflow_def VALUES ($1, $2, $3) "
            "ON CONFLICT (name, version) DO UPDATE SET body = $3",
            name,
            version,
            body,
        )

    async def get_workflow_def(self, name: str, version: int | None) -> bytes | None:
        if version is None:
            value: bytes | None = await self._fetchval(
                "SELECT body FROM workflow_def WHERE name = $1 ORDER BY version DESC LIMIT 1",
                name,
            )
        else:
            value = await self._fetchval(
                "SELECT body FROM workflow_def WHERE name = $1 AND version = $2", name, version
            )
        return value

    async def list_workflow_defs(self) -> list[bytes]:
        rows = await self._fetch('SELECT body FROM workflow_def ORDER BY name COLLATE "C", version')
        return [r["body"] for r in rows]

    async def delete_workflow_def(self, name: str, version: int) -> bool:
        status = await self._execute(
            "DELETE FROM workflow_def WHERE name = $1 AND version = $2", name, version
        )
        return status != "DELETE 0"

    async def put_event_handler(self, name: str, body: bytes) -> None:
        await self._execute(
            "INSERT INTO event_handler VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET body = $2",
            name,
            body,
        )

    async def get_event_handler(self, name: str) -> bytes | None:
        value: bytes | None = await self._fetchval(
            "SELECT body FROM event_handler WHERE name = $1", name
        )
        return value

    async def list_event_handlers(self) -> list[bytes]:
        rows = await self._fetch('SELECT body FROM event_handler ORDER BY name COLLATE "C"')
        return [r["body"] for r in rows]

    async def delete_event_handler(self, name: str) -> bool:
        return await self._execute("DELETE FROM event_handler WHERE name = $1", name) != (
            "DELETE 0"
        )

    # ------------------------------------------------------------------ executions

    async def commit(self, commit: Commit, now_ms: int) -> int:
        result = (await self.commit_many([commit], now_ms))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def commit_many(self, commits: list[Commit], now_ms: int) -> list[int | Exception]:
        if not commits:
            return []
        committer = self.committer
        if committer is None:
            raise BadRequest("PostgresStore is not open: call `await store.open()` first")
        for c in commits:
            for op in c.queue_ops:
                if op.kind not in ("push", "remove", "ack"):
                    raise BadRequest(f"queue op kind {op.kind!r}: use push, remove or ack")
        await self._store_definitions(commits)
        return await self._run(lambda _: committer.submit(commits, now_ms))

    async def _store_definitions(self, commits: list[Commit]) -> None:
        """Write the definitions these commits name that this store has not written yet,
        before the commits (an orphan left by a crash in between is harmless: a row is
        only ever looked up by the ref of a workflow that names it)."""
        new = self._definitions.unknown([c.record for c in commits])
        if not new:
            return
        await self._execute(
            "INSERT INTO definition_blob (ref, body) SELECT * FROM unnest($1::text[], "
            "$2::bytea[]) ON CONFLICT (ref) DO NOTHING",
            list(new),
            list(new.values()),
        )
        for ref, definition in new.items():
            self._definitions.remember(ref, definition)

    async def _read_definitions(self, refs: list[str]) -> dict[str, bytes]:
        rows = await self._fetch(
            "SELECT ref, body FROM definition_blob WHERE ref = ANY($1::text[])", refs
        )
        return {row["ref"]: row["body"] for row in rows}

    async def load(self, workflow_id: str) -> WorkflowRecord | None:
        rows = await self._fetch(
            f"SELECT {_INDEX_COLUMNS}, body FROM workflow WHERE workflow_id = $1", workflow_id
        )
        if not rows:
            return None
        record = _loaded(rows[0])
        await self._definitions.fill([record], self._read_definitions)
        return record

    async def load_many(self, workflow_ids: list[str]) -> list[WorkflowRecord | None]:
        if not workflow_ids:
            return []
        rows = await self._fetch(
            f"SELECT {_INDEX_COLUMNS}, body FROM workflow WHERE workflow_id = ANY($1::text[])",
            workflow_ids,
        )
        found = {r["workflow_id"]: _loaded(r) for r in rows}
        await self._definitions.fill(list(found.values()), self._read_definitions)
        return [found.get(i) for i in workflow_ids]

    async def delete(self, workflow_id: str) -> bool:
        return bool(await self._fetchval(_DELETE_WORKFLOW, workflow_id, DECIDER_QUEUE))

    async def workflow_id_for_task(self, task_id: str) -> str | None:
        value: str | None = await self._fetchval(
            "SELECT workflow_id FROM task_index WHERE task_id = $1", task_id
        )
        return value

    async def running_ids(self, workflow_name: str, workflow_version: int | None) -> list[str]:
        sql = (
            "SELECT workflow_id FROM workflow WHERE workflow_name = $1 "
            f"AND status NOT IN {TERMINAL_SQL} AND ($2::integer IS NULL OR workflow_version = $2)"
        )
        rows = await self._fetch(sql, workflow_name, workflow_version)
        return sorted(r["workflow_id"] for r in rows)

    async def ids_by_correlation(
        self, workflow_name: str, correlation_id: str, include_closed: bool
    ) -> list[str]:
        rows = await self._fetch(
            "SELECT workflow_id FROM workflow WHERE workflow_name = $1 AND correlation_id = $2 "
            "AND ($3 OR status = 'RUNNING')",
            workflow_name,
            correlation_id,
            include_closed,
        )
        return sorted(r["workflow_id"] for r in rows)

    async def search(self, request: SearchRequest) -> tuple[int, list[WorkflowRecord]]:
        node = query_lang.parse_query(request.query)
        terms = query_lang.parse_free_text(request.free_text)
        keys = query_lang.parse_sort(request.sort)
        where, params = sql_search.render_where(node, terms, dialect="postgres")
        order = sql_search.render_order_by(keys, dialect="postgres")
        n = len(params)
        page_sql = (
            f"SELECT {_INDEX_COLUMNS} FROM workflow WHERE {where} ORDER BY {order} "
            f"LIMIT ${n + 1} OFFSET ${n + 2}"
        )
        count_sql = f"SELECT count(*) FROM workflow WHERE {where}"
        start, size = max(0, request.start), max(0, request.size)

        async def run(pool: Any) -> tuple[int, list[Any]]:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                # One snapshot for the count and the page, so they agree.
                total = await conn.fetchval(count_sql, *params)
                rows = await conn.fetch(page_sql, *params, size, start)
            return total, rows

        total, rows = await self._run(run)
        return total, [_record(r) for r in rows]

    # ------------------------------------------------------------------ queues

    async def push(
        self, queue: str, message_id: str, *, priority: int = 0, delay_ms: int = 0, now_ms: int
    ) -> None:
        await self._execute(_PUSH, queue, message_id, priority, now_ms + delay_ms)

    async def pop(self, queue: str, count: int, *, unack_ms: int, now_ms: int) -> list[str]:
        if count <= 0:
            return []
        rows = await self._fetch(_POP, queue, now_ms, count, now_ms + unack_ms)
        rows.sort(key=lambda r: (r["deliver_at"], -r["priority"], r["seq"]))
        return [r["message_id"] for r in rows]

    async def ack(self, queue: str, message_id: str) -> bool:
        return await self.remove(queue, message_id)

    async def remove(self, queue: str, message_id: str) -> bool:
        status = await self._execute(
            "DELETE FROM queue_message WHERE queue = $1 AND message_id = $2", queue, message_id
        )
        return status != "DELETE 0"

    async def postpone(
        self, queue: str, message_id: str, *, delay_ms: int, priority: int = 0, now_ms: int
    ) -> None:
        await self._execute(_PUSH, queue, message_id, priority, now_ms + delay_ms)

    async def contains(self, queue: str, message_id: str) -> bool:
        return bool(
            await self._fetchval(
                "SELECT EXISTS (SELECT 1 FROM queue_message WHERE queue = $1 AND message_id = $2)",
                queue,
                message_id,
            )
        )

    async def size(self, queue: str) -> int:
        return int(
            await self._fetchval("SELECT count(*) FROM queue_message WHERE queue = $1", queue)
        )

    async def sizes(self) -> dict[str, int]:
        rows = await self._fetch("SELECT queue, count(*) AS n FROM queue_message GROUP BY queue")
        return {r["queue"]: r["n"] for r in sorted(rows, key=lambda r: str(r["queue"]))}

    async def peek(self, queue: str, count: int) -> list[str]:
        if count <= 0:
            return []
        rows = await self._fetch(
            "SELECT message_id FROM queue_message WHERE queue = $1 "
            "ORDER BY deliver_at, priority DESC, seq LIMIT $2",
            queue,
            count,
        )
        return [r["message_id"] for r in rows]

    # ------------------------------------------------------------------ workers

    async def record_poll(self, record: PollRecord) -> None:
        domain_key = "" if record.domain is None else "=" + record.domain
        await self._execute(
            "INSERT INTO poll_data VALUES ($1, $2, $3) "
            "ON CONFLICT (queue_name, domain_key) DO UPDATE SET body = $3",
            record.queue_name,
            domain_key,
            _encoder.encode(record),
        )

    async def poll_data(self, task_type: str | None) -> list[PollRecord]:
        rows = await self._fetch(
            "SELECT body FROM poll_data WHERE $1::text IS NULL OR queue_name = $1", task_type
        )
        records = [_poll_decoder.decode(r["body"]) for r in rows]
        return sorted(records, key=lambda p: (p.queue_name, p.domain or ""))

    async def add_logs(self, lines: list[LogLine]) -> None:
        if not lines:
            return
        await self._execute(
            "INSERT INTO task_log (task_id, log, created_time) "
            "SELECT t, l, c FROM unnest($1::text[], $2::text[], $3::bigint[]) "
            "WITH ORDINALITY AS x(t, l, c, n) ORDER BY n",
            [x.task_id for x in lines],
            [x.log for x in lines],
            [x.created_time for x in lines],
        )

    async def get_logs(self, task_id: str) -> list[LogLine]:
        rows = await self._fetch(
            "SELECT task_id, log, created_time FROM task_log WHERE task_id = $1 ORDER BY id",
            task_id,
        )
        return [
            LogLine(task_id=r["task_id"], log=r["log"], created_time=r["created_time"])
            for r in rows
        ]
