"""`sqlite:///path`: the default, single-node durable Store (stdlib sqlite3).

Rules:
- URL: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (SQLAlchemy's
  convention), or `sqlite:///:memory:` (one private database, gone on close).
- All writes run on the trio thread (server/stores/sqlite_inline.py), which batches the
  calls of one scheduler batch into one transaction (group commit); reads run on a
  thread with its own connection (server/stores/sqlite_worker.py; WAL: readers never wait
  for the writer), and WAL checkpoints on a third (the loop never waits for an fsync).
  Open, use and close a store within one trio run.
  Each commit's version check runs inside that transaction, so a conflicting commit fails
  alone and applies nothing.
- WAL journal with synchronous=NORMAL: a committed transaction survives a process crash
  (not necessarily an OS crash before the next checkpoint's fsync; see
  sqlite_schema.PERFORMANCE_PRAGMAS). A new SqliteStore on the same file sees everything
  committed.
- A commit is one INSERT (create) or UPDATE (update) whose WHERE clause carries the
  version check, then its task-index and queue statements; nothing is read first. A
  commit that fails is reported by reading the stored version afterwards.
- Definitions (core/store.py) live once per ref in `definition_blob`; a commit inserts its
  definition (INSERT OR IGNORE) unless this store already committed that ref, and a
  ref is remembered only after its transaction committed. Loads join it back in.
- Schema created and migrated on open (server/stores/sqlite_schema.py).
- Time comes from arguments (`now_ms`), never from the clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from core import search
from core.errors import BadRequest, InternalError
from core.store import (
    DECIDER_QUEUE,
    Commit,
    LogLine,
    PollRecord,
    SearchRequest,
    WorkflowRecord,
)
from server.stores import sqlite_schema
from server.stores.commit_rules import TERMINAL_STATUSES, next_version
from server.stores.definitions import StoredDefinitions
from server.stores.sql_search import render_order_by, render_where
from server.stores.sqlite_inline import InlineWriter
from server.stores.sqlite_worker import SqliteWorker

_INDEX_COLUMNS = (
    "workflow_id, workflow_name, workflow_version, status, create_time, update_time, "
    "end_time, correlation_id, parent_workflow_id, search_text"
)
_LOAD_COLUMNS = ", ".join(
    [f"w.{c}" for c in f"{_INDEX_COLUMNS}, body, version, definition_ref".split(", ")] + ["d.body"]
)
_TERMINAL_SQL = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES))

T = TypeVar("T")
Row = tuple[str, str, int, str, int, int, int, str | None, str | None, str, bytes, int]
# _load_many's rows: Row, then the definition's ref and bytes.
FullRow = tuple[
    str, str, int, str, int, int, int, str | None, str | None, str, bytes, int, str, bytes | None
]


def _full_record(row: FullRow) -> WorkflowRecord:
    record = _record(row[:12])
    record.definition_ref = row[12]
    record.definition = b"" if row[13] is None else bytes(row[13])
    return record


def _record(row: Row) -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=row[0],
        workflow_name=row[1],
        workflow_version=row[2],
        status=row[3],
        create_time=row[4],
        update_time=row[5],
        end_time=row[6],
        correlation_id=row[7],
        parent_workflow_id=row[8],
        search_text=row[9],
        body=bytes(row[10]),
        version=row[11],
    )


def database_path(url: str) -> str:
    """The file path in a `sqlite:///...` URL (see module rules).

    Raises:
        BadRequest: the URL has no path or a host part.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise BadRequest(
            f"bad SQLite store URL {url!r}: use sqlite:///relative.db or "
            "sqlite:////absolute/path.db"
        )
    return url[len(prefix) :]


# ---------------------------------------------------------------------- writes (the writer)


# A commit's workflow write, cheapest first. Most commits change neither the status nor
# any other indexed column: the first UPDATE then sets only the unindexed ones, so no
# index page is touched (SQLite rewrites the entries of every index whose columns an
# UPDATE sets, even to the same value). When an indexed column changes, that UPDATE
# matches no row and the full one runs. Both check the version in their WHERE clause.
_UPDATE_UNINDEXED = (
    "UPDATE workflow SET workflow_version = ?, update_time = ?, end_time = ?, "
    "search_text = ?, body = ?, version = ?, definition_ref = ? "
    "WHERE workflow_id = ? AND version = ? AND status = ? AND workflow_name = ? "
    "AND create_time = ? AND correlation_id IS ? AND parent_workflow_id IS ?"
)
_UPDATE_ALL = (
    "UPDATE workflow SET workflow_name = ?, workflow_version = ?, status = ?, "
    "create_time = ?, update_time = ?, end_time = ?, correlation_id = ?, "
    "parent_workflow_id = ?, search_text = ?, body = ?, definition_ref = ?, version = ? "
    "WHERE workflow_id = ? AND version = ?"
)
_INSERT = (
    "INSERT INTO workflow (workflow_name, workflow_version, status, create_time, "
    "update_time, end_time, correlation_id, parent_workflow_id, search_text, body, "
    "definition_ref, version, workflow_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?) "
    "ON CONFLICT (workflow_id) DO NOTHING"
)
_PUSH = (
    "INSERT OR REPLACE INTO queue_message (queue, message_id, priority, deliver_at) "
    "VALUES (?, ?, ?, ?)"
)
_DELETE_MESSAGE = "DELETE FROM queue_message WHERE queue = ? AND message_id = ?"


def _columns(r: WorkflowRecord) -> tuple[object, ...]:
    """The record's values in the column order `_INSERT` and `_UPDATE_ALL` set them."""
    return (
        r.workflow_name,
        r.workflow_version,
        r.status,
        r.create_time,
        r.update_time,
        r.end_time,
        r.correlation_id,
        r.parent_workflow_id,
        r.search_text,
        r.body,
        r.definition_ref,
    )


def _write_record(conn: sqlite3.Connection, commit: Commit) -> int:
    """Insert or update the workflow row (version checked in SQL); return its new version.

    Raises:
        VersionConflict: as commit_rules.next_version decides; nothing is written then.
    """
    r = commit.record
    expected = commit.expected_version
    if expected == 0:
        cur = conn.execute(_INSERT, (*_columns(r), r.workflow_id))
        if cur.rowcount == 1:
            return 1
    else:
        version = expected + 1
        cur = conn.execute(
            _UPDATE_UNINDEXED,
            (
                r.workflow_version,
                r.update_time,
                r.end_time,
                r.search_text,
                r.body,
                version,
                r.definition_ref,
                r.workflow_id,
                expected,
                r.status,
                r.workflow_name,
                r.create_time,
                r.correlation_id,
                r.parent_workflow_id,
            ),
        )
        if cur.rowcount == 1:
            return version
        cur = conn.execute(_UPDATE_ALL, (*_columns(r), version, r.workflow_id, expected))
        if cur.rowcount == 1:
            return version
    # Nothing written: the stored version says why (this raises VersionConflict).
    found = conn.execute(
        "SELECT version FROM workflow WHERE workflow_id = ?", (r.workflow_id,)
    ).fetchone()
    next_version(None if found is None else found[0], commit)
    raise InternalError(f"workflow {r.workflow_id}: the write matched no row at a valid version")


_INSERT_DEFINITION = "INSERT OR IGNORE INTO definition_blob (ref, body) VALUES (?, ?)"


def _apply_commit(
    conn: sqlite3.Connection, commit: Commit, now_ms: int, known_refs: StoredDefinitions
) -> int:
    version = _write_record(conn, commit)
    r = commit.record
    if r.definition_ref and r.definition_ref not in known_refs:
        conn.execute(_INSERT_DEFINITION, (r.definition_ref, r.definition))
    workflow_id = r.workflow_id
    if commit.removed_task_ids:
        conn.executemany(
            "DELETE FROM task_index WHERE task_id = ? AND workflow_id = ?",
            [(t, workflow_id) for t in commit.removed_task_ids],
        )
    if commit.added_task_ids:
        conn.executemany(
            "INSERT OR REPLACE INTO task_index (task_id, workflow_id) VALUES (?, ?)",
            [(t, workflow_id) for t in commit.added_task_ids],
        )
    execute = conn.execute
    for op in commit.queue_ops:
        if op.kind == "push":
            # OR REPLACE deletes the old row and inserts a new one: a fresh seq.
            execute(_PUSH, (op.queue, op.message_id, op.priority, now_ms + op.delay_ms))
        else:  # "remove" | "ack"
            execute(_DELETE_MESSAGE, (op.queue, op.message_id))
    return version


def _push(conn: sqlite3.Connection, queue: str, message_id: str, priority: int, at: int) -> None:
    # OR REPLACE deletes the old row and inserts a new one: a fresh seq (insertion order).
    conn.execute(_PUSH, (queue, message_id, priority, at))


def _delete_message(conn: sqlite3.Connection, queue: str, message_id: str) -> bool:
    return conn.execute(_DELETE_MESSAGE, (queue, message_id)).rowcount > 0


def _pop(conn: sqlite3.Connection, queue: str, count: int, unack_ms: int, now_ms: int) -> list[str]:
    rows = conn.execute(
        "SELECT seq, message_id FROM queue_message WHERE queue = ? AND deliver_at <= ? "
        "ORDER BY deliver_at, priority DESC, seq LIMIT ?",
        (queue, now_ms, count),
    ).fetchall()
    if rows:
        conn.executemany(
            "UPDATE queue_message SET deliver_at = ? WHERE seq = ?",
            [(now_ms + unack_ms, seq) for seq, _ in rows],
        )
    return [message_id for _, message_id in rows]


def _delete_workflow(conn: sqlite3.Connection, workflow_id: str) -> bool:
    cur = conn.execute("DELETE FROM workflow WHERE workflow_id = ?", (workflow_id,))
    if cur.rowcount == 0:
        return False
    conn.execute("DELETE FROM task_index WHERE workflow_id = ?", (workflow_id,))
    _delete_message(conn, DECIDER_QUEUE, workflow_id)
    return True


# ---------------------------------------------------------------------- reads (reader thread)


def _load_many(conn: sqlite3.Connection, ids: list[str]) -> list[WorkflowRecord | None]:
    found: dict[str, WorkflowRecord] = {}
    unique = list(dict.fromkeys(ids))
    for i in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
        chunk = unique[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT {_LOAD_COLUMNS} FROM workflow AS w "
            "LEFT JOIN definition_blob AS d ON d.ref = w.definition_ref "
            f"WHERE w.workflow_id IN ({marks})",
            chunk,
        ):
            found[row[0]] = _full_record(row)
    return [found.get(i) for i in ids]


def _search(conn: sqlite3.Connection, request: SearchRequest) -> tuple[int, list[WorkflowRecord]]:
    node = search.parse_query(request.query)
    terms = search.parse_free_text(request.free_text)
    keys = search.parse_sort(request.sort)
    where, params = render_where(node, terms, dialect="sqlite")
    total = conn.execute(f"SELECT count(*) FROM workflow WHERE {where}", params).fetchone()[0]
    order = render_order_by(keys, dialect="sqlite")
    rows = conn.execute(
        f"SELECT {_INDEX_COLUMNS}, x'', version FROM workflow WHERE {where} "
        f"ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, max(request.size, 0), max(request.start, 0)],
    ).fetchall()
    return int(total), [_record(row) for row in rows]


def _column(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> list[str]:
    return [row[0] for row in conn.execute(sql, params)]


class SqliteStore:
    """core.store.Store on one SQLite file."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = database_path(url)
        self._writer: InlineWriter | None = None
        self._reader: InlineWriter | SqliteWorker | None = None
        self._checkpointer: SqliteWorker | None = None
        # Definitions a committed transaction of this store has written (never deleted).
        self._known_refs = StoredDefinitions()

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._writer is not None:
            return
        in_memory = self.path == ":memory:"
        read_only = partial(sqlite_schema.connect, self.path, read_only=True)
        checkpointer = None
        if not in_memory:
            checkpointer = SqliteWorker(read_only, f"sqlite-c:{self.path}")
        writer = InlineWriter(
            partial(sqlite_schema.connect, self.path, autocheckpoint=in_memory),
            f"sqlite-w:{self.path}",
            checkpoint=None
            if checkpointer is None
            else partial(checkpointer.run, sqlite_schema.checkpoint, write=False),
        )
        await writer.start(sqlite_schema.migrate)
        reader: InlineWriter | SqliteWorker = writer
        if checkpointer is not None:
            checkpointer.start()
            # A second connection on its own thread: WAL lets reads run while the writer's
            # transaction is in flight, and a read started after a commit returned sees it.
            reader = SqliteWorker(read_only, f"sqlite-r:{self.path}")
            reader.start()
        self._writer, self._reader, self._checkpointer = writer, reader, checkpointer

    async def close(self) -> None:
        writer, reader, checkpointer = self._writer, self._reader, self._checkpointer
        self._writer = self._reader = self._checkpointer = None
        if reader is not None and reader is not writer:
            await reader.stop()
        if writer is not None:
            await writer.stop()
        if checkpointer is not None:
            # After the writer: its last checkpoint request has been answered.
            await checkpointer.stop()

    @property
    def worker(self) -> InlineWriter:
        """The writer (every write, in group-committed transactions on the trio thread)."""
        if self._writer is None:
            raise InternalError(f"store {self.url} is not open: call `await store.open()` first")
        return self._writer

    @property
    def reader(self) -> InlineWriter | SqliteWorker:
        """The reader thread (its own connection; the writer itself for :memory:)."""
        if self._reader is None:
            raise InternalError(f"store {self.url} is not open: call `await store.open()` first")
        return self._reader

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.reader.run(fn, write=False)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.worker.run(fn, write=True)

    async def _exec(self, sql: str, params: tuple[object, ...]) -> int:
        """Run one write statement; return its rowcount."""
        return await self._write(lambda c: c.execute(sql, params).rowcount)

    async def _one(self, sql: str, params: tuple[object, ...]) -> bytes | None:
        row = await self._read(lambda c: c.execute(sql, params).fetchone())
        return None if row is None else bytes(row[0])

    async def _bodies(self, sql: str) -> list[bytes]:
        return await self._read(lambda c: [bytes(r[0]) for r in c.execute(sql)])

    # ------------------------------------------------------------------ metadata

    async def put_task_def(self, name: str, body: bytes) -> None:
        await self._exec("INSERT OR REPLACE INTO task_def (name, body) VALUES (?, ?)", (name, body))

    async def get_task_def(self, name: str) -> bytes | None:
        return await self._one("SELECT body FROM task_def WHERE name = ?", (name,))

    async def list_task_defs(self) -> list[bytes]:
        return await self._bodies("SELECT body FROM task_def ORDER BY name")

    async def delete_task_def(self, name: str) -> bool:
        return await self._exec("DELETE FROM task_def WHERE name = ?", (name,)) > 0

    async def put_workflow_def(self, name: str, version: int, body: bytes) -> None:
        await self._exec(
            "INSERT OR REPLACE INTO workflow_def (name, version, body) VALUES (?, ?, ?)",
            (name, version, body),
        )

    async def get_workflow_def(self, name: str, version: int | None) -> bytes | None:
        if version is None:
            return await self._one(
                "SELECT body FROM workflow_def WHERE name = ? ORDER BY version DESC LIMIT 1",
                (name,),
            )
        return await self._one(
            "SELECT body FROM workflow_def WHERE name = ? AND version = ?", (name, version)
        )

    async def list_workflow_defs(self) -> list[bytes]:
        return await self._bodies("SELECT body FROM workflow_def ORDER BY name, version")

    async def delete_workflow_def(self, name: str, version: int) -> bool:
        sql = "DELETE FROM workflow_def WHERE name = ? AND version = ?"
        return await self._exec(sql, (name, version)) > 0

    async def put_event_handler(self, name: str, body: bytes) -> None:
        await self._exec(
            "INSERT OR REPLACE INTO event_handler (name, body) VALUES (?, ?)", (name, body)
        )

    async def get_event_handler(self, name: str) -> bytes | None:
        return await self._one("SELECT body FROM event_handler WHERE name = ?", (name,))

    async def list_event_handlers(self) -> list[bytes]:
        return await self._bodies("SELECT body FROM event_handler ORDER BY name")

    async def delete_event_handler(self, name: str) -> bool:
        return await self._exec("DELETE FROM event_handler WHERE name = ?", (name,)) > 0

    # ------------------------------------------------------------------ executions

    async def commit(self, commit: Commit, now_ms: int) -> int:
        known = self._known_refs
        version = await self._write(lambda c: _apply_commit(c, commit, now_ms, known))
        known.remember_committed([commit], [version])  # its transaction has committed
        return version

    async def commit_many(self, commits: list[Commit], now_ms: int) -> list[int | Exception]:
        # One job per commit, queued together: each fails alone (see sqlite_worker.py).
        known = self._known_refs
        results = await self.worker.run_many(
            [
                partial(_apply_commit, commit=commit, now_ms=now_ms, known_refs=known)
                for commit in commits
            ]
        )
        known.remember_committed(commits, results)
        return results

    async def load(self, workflow_id: str) -> WorkflowRecord | None:
        return (await self.load_many([workflow_id]))[0]

    async def load_many(self, workflow_ids: list[str]) -> list[WorkflowRecord | None]:
        if not workflow_ids:
            return []
        return await self._read(lambda c: _load_many(c, workflow_ids))

    async def delete(self, workflow_id: str) -> bool:
        return await self._write(lambda c: _delete_workflow(c, workflow_id))

    async def workflow_id_for_task(self, task_id: str) -> str | None:
        ids = await self._read(
            lambda c: _column(c, "SELECT workflow_id FROM task_index WHERE task_id = ?", (task_id,))
        )
        return ids[0] if ids else None

    async def running_ids(self, workflow_name: str, workflow_version: int | None) -> list[str]:
        sql = (
            "SELECT workflow_id FROM workflow WHERE workflow_name = ? "
            f"AND status NOT IN ({_TERMINAL_SQL})"
        )
        params: tuple[object, ...] = (workflow_name,)
        if workflow_version is not None:
            sql += " AND workflow_version = ?"
            params = (workflow_name, workflow_version)
        return await self._read(lambda c: _column(c, sql + " ORDER BY workflow_id", params))

    async def ids_by_correlation(
        self, workflow_name: str, correlation_id: str, include_closed: bool
    ) -> list[str]:
        sql = "SELECT workflow_id FROM workflow WHERE workflow_name = ? AND correlation_id = ?"
        if not include_closed:
            sql += " AND status = 'RUNNING'"
        params = (workflow_name, correlation_id)
        return await self._read(lambda c: _column(c, sql + " ORDER BY workflow_id", params))

    async def search(self, request: SearchRequest) -> tuple[int, list[WorkflowRecord]]:
        # Parse errors (BadRequest) surface before the worker is involved.
        search.parse_query(request.query)
        search.parse_sort(request.sort)
        return await self._read(lambda c: _search(c, request))

    # ------------------------------------------------------------------ queues

    async def push(
        self, queue: str, message_id: str, *, priority: int = 0, delay_ms: int = 0, now_ms: int
    ) -> None:
        await self._write(lambda c: _push(c, queue, message_id, priority, now_ms + delay_ms))

    async def pop(self, queue: str, count: int, *, unack_ms: int, now_ms: int) -> list[str]:
        if count <= 0:
            return []
        return await self._write(lambda c: _pop(c, queue, count, unack_ms, now_ms))

    async def ack(self, queue: str, message_id: str) -> bool:
        return await self._write(lambda c: _delete_message(c, queue, message_id))

    async def remove(self, queue: str, message_id: str) -> bool:
        return await self._write(lambda c: _delete_message(c, queue, message_id))

    async def postpone(
        self, queue: str, message_id: str, *, delay_ms: int, priority: int = 0, now_ms: int
    ) -> None:
        await self._write(lambda c: _push(c, queue, message_id, priority, now_ms + delay_ms))

    async def contains(self, queue: str, message_id: str) -> bool:
        sql = "SELECT 1 FROM queue_message WHERE queue = ? AND message_id = ?"
        return bool(await self._read(lambda c: c.execute(sql, (queue, message_id)).fetchone()))

    async def size(self, queue: str) -> int:
        sql = "SELECT count(*) FROM queue_message WHERE queue = ?"
        return int(await self._read(lambda c: c.execute(sql, (queue,)).fetchone()[0]))

    async def sizes(self) -> dict[str, int]:
        sql = "SELECT queue, count(*) FROM queue_message GROUP BY queue ORDER BY queue"
        return await self._read(lambda c: {q: int(n) for q, n in c.execute(sql)})

    async def peek(self, queue: str, count: int) -> list[str]:
        sql = (
            "SELECT message_id FROM queue_message WHERE queue = ? "
            "ORDER BY deliver_at, priority DESC, seq LIMIT ?"
        )
        return await self._read(lambda c: _column(c, sql, (queue, max(count, 0))))

    # ------------------------------------------------------------------ workers

    async def record_poll(self, record: PollRecord) -> None:
        await self._exec(
            "INSERT OR REPLACE INTO poll_data (queue_name, domain, worker_id, last_poll_time) "
            "VALUES (?, ?, ?, ?)",
            (record.queue_name, record.domain or "", record.worker_id, record.last_poll_time),
        )

    async def poll_data(self, task_type: str | None) -> list[PollRecord]:
        sql = "SELECT queue_name, domain, worker_id, last_poll_time FROM poll_data"
        params: tuple[object, ...] = ()
        if task_type is not None:
            sql += " WHERE queue_name = ?"
            params = (task_type,)
        rows = await self._read(lambda c: c.execute(sql + " ORDER BY 1, 2", params).fetchall())
        return [
            PollRecord(queue_name=q, domain=d or None, worker_id=w, last_poll_time=t)
            for q, d, w, t in rows
        ]

    async def add_logs(self, lines: list[LogLine]) -> None:
        if not lines:
            return
        rows = [(x.task_id, x.log, x.created_time) for x in lines]
        await self._write(
            lambda c: c.executemany(
                "INSERT INTO exec_log (task_id, log, created_time) VALUES (?, ?, ?)", rows
            )
        )

    async def get_logs(self, task_id: str) -> list[LogLine]:
        sql = "SELECT task_id, log, created_time FROM exec_log WHERE task_id = ? ORDER BY id"
        rows = await self._read(lambda c: c.execute(sql, (task_id,)).fetchall())
        return [LogLine(task_id=t, log=x, created_time=ct) for t, x, ct in rows]
