"""SQLite schema: connection settings and the versioned migrations applied on open.

Rules:
- MIGRATIONS is append-only: entry N (1-based) moves a database from version N-1 to N.
  Never edit a released entry; add a new one. `schema_version` holds one row: the
  version the database is at. Each migration runs in its own transaction with the
  version bump, so a crash leaves the database at a whole version.
- A database newer than this code is refused with a message naming both versions.
- Column names equal core.store.WorkflowRecord attributes (server/stores/sql_search.py
  relies on it).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.errors import Unavailable

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: the initial schema.
    (
        """CREATE TABLE task_def (name TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID""",
        """CREATE TABLE workflow_def (
            name TEXT NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL,
            PRIMARY KEY (name, version)) WITHOUT ROWID""",
        """CREATE TABLE event_handler (name TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID""",
        """CREATE TABLE workflow (
            workflow_id TEXT PRIMARY KEY,
            workflow_name TEXT NOT NULL,
            workflow_version INTEGER NOT NULL,
            status TEXT NOT NULL,
            create_time INTEGER NOT NULL,
            update_time INTEGER NOT NULL,
            end_time INTEGER NOT NULL,
            correlation_id TEXT,
            parent_workflow_id TEXT,
            search_text TEXT NOT NULL,
            body BLOB NOT NULL,
            version INTEGER NOT NULL)""",
        "CREATE INDEX workflow_by_name_status ON workflow (workflow_name, status)",
        "CREATE INDEX workflow_by_status ON workflow (status, create_time)",
        "CREATE INDEX workflow_by_correlation ON workflow (workflow_name, correlation_id)",
        "CREATE INDEX workflow_by_create_time ON workflow (create_time)",
        """CREATE TABLE task_index (
            task_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX task_index_by_workflow ON task_index (workflow_id)",
        # seq is the rowid: it orders messages by insertion (a replacing push gets a new one).
        """CREATE TABLE queue_message (
            seq INTEGER PRIMARY KEY,
            queue TEXT NOT NULL,
            message_id TEXT NOT NULL,
            priority INTEGER NOT NULL,
            deliver_at INTEGER NOT NULL,
            UNIQUE (queue, message_id))""",
        """CREATE INDEX queue_message_by_delivery
            ON queue_message (queue, deliver_at, priority DESC, seq)""",
        """CREATE TABLE poll_data (
            queue_name TEXT NOT NULL, domain TEXT NOT NULL, worker_id TEXT,
            last_poll_time INTEGER NOT NULL,
            PRIMARY KEY (queue_name, domain)) WITHOUT ROWID""",
        """CREATE TABLE exec_log (
            id INTEGER PRIMARY KEY, task_id TEXT NOT NULL, log TEXT NOT NULL,
            created_time INTEGER NOT NULL)""",
        "CREATE INDEX exec_log_by_task ON exec_log (task_id, id)",
    ),
    # 2: search by correlationId or parentWorkflowId alone (the UI's common filters).
    (
        "CREATE INDEX workflow_by_correlation_id ON workflow (correlation_id)",
        "CREATE INDEX workflow_by_parent ON workflow (parent_workflow_id)",
    ),
    # 3: workflow definitions stored once per digest, referenced by the workflow rows.
    (
        "ALTER TABLE workflow ADD COLUMN definition_ref TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE definition_blob (
            ref TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID""",
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)

# Settings that change speed, never results (each connection sets them): a larger page
# cache (grows only as pages are used; SQLite's default is 2 MiB), the database file read
# through mmap (fewer read() calls; WAL frames are still read), temporary b-trees and
# statement journals in memory. The write connection turns automatic checkpoints off
# (`connect(..., autocheckpoint=False)`): a checkpoint costs two fsyncs (at
# synchronous=NORMAL the WAL is synced only then) and the writer runs on the trio loop, so
# `checkpoint` runs them on another thread (server/stores/sqlite_inline.py decides when).
# Process-crash durability is unchanged: every committed transaction is in the WAL file
# before COMMIT returns.
PERFORMANCE_PRAGMAS = (
    "cache_size = -32768",  # KiB: 32 MiB at most per connection
    "mmap_size = 268435456",
    "temp_store = MEMORY",
    "wal_autocheckpoint = 10000",
)


def _lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


def connect(
    path: str, *, read_only: bool = False, autocheckpoint: bool = True
) -> sqlite3.Connection:
    """Open `path` in autocommit mode (transactions are explicit), WAL, synchronous=NORMAL.

    `read_only` connections refuse writes (`PRAGMA query_only`), so a read job that tried
    to write would fail instead of bypassing the writer's group commit. Without
    `autocheckpoint` the connection's commits never checkpoint (see `checkpoint`). The
    connection may be used from another thread than the one opening it (one at a time).
    """
    if path != ":memory:":
        # Runs on the worker thread, like every other file access of the store.
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    for pragma in PERFORMANCE_PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    if not autocheckpoint:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    # freeText folds case like Python (core.search), not SQLite's ASCII-only lower().
    conn.create_function("podium_lower", 1, _lower, deterministic=True)
    return conn


def migrate(conn: sqlite3.Connection, *, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema to `target` (default: the latest); return the version found before.

    Raises:
        Unavailable: the database was written by a newer Podium.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    found = int(row[0]) if row[0] is not None else 0
    if found > SCHEMA_VERSION:
        raise Unavailable(
            f"the SQLite database is at schema version {found}, newer than this Podium "
            f"understands ({SCHEMA_VERSION}): upgrade Podium or use another file"
        )
    for version in range(found + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def checkpoint(conn: sqlite3.Connection) -> int:
    """Copy the WAL into the database without waiting for anyone (PASSIVE).

    Returns the WAL's length in pages when the checkpoint started. The WAL file starts
    over only at a transaction that begins after a checkpoint copied every frame, so
    under a steady stream of commits it keeps growing (server/stores/sqlite_inline.py
    pauses commits for one checkpoint when this grows too large).
    """
    _busy, log, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
    return int(log)
