"""PostgreSQL schema for PostgresStore: versioned migrations Podium applies itself on open.

Rules:
- Each migration is (version, name, SQL) and is never edited once released: a change is a
  new migration with the next version. `schema_migrations` records what ran.
- `migrate()` runs in one transaction holding a transaction-level advisory lock derived from
  the schema name, so several Podium processes opening the same schema at once apply each
  migration exactly once (the others wait, then find nothing to do).
- The SQL names tables unqualified: migrate() sets `search_path` to the store's schema for
  the transaction, and the store's pool connections use the same search_path, so one
  database can hold any number of isolated Podium schemas.
- A schema migrated by a newer Podium (a version this code does not know) is refused with
  a clear error rather than used half-understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.errors import BadRequest, Unavailable

SCHEMA_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Statuses after which a workflow never runs again (core.enums.WORKFLOW_TERMINAL).
TERMINAL_SQL = "('COMPLETED', 'FAILED', 'TIMED_OUT', 'TERMINATED')"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


_TABLES = f"""
CREATE TABLE workflow (
    workflow_id        text PRIMARY KEY,
    workflow_name      text NOT NULL,
    workflow_version   integer NOT NULL,
    status             text NOT NULL,
    create_time        bigint NOT NULL,
    update_time        bigint NOT NULL,
    end_time           bigint NOT NULL DEFAULT 0,
    correlation_id     text,
    parent_workflow_id text,
    search_text        text NOT NULL DEFAULT '',
    body               bytea NOT NULL,
    version            integer NOT NULL
);
CREATE INDEX workflow_open_idx ON workflow (workflow_name, workflow_version)
    WHERE status NOT IN {TERMINAL_SQL};
CREATE INDEX workflow_correlation_idx ON workflow (workflow_name, correlation_id)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX workflow_create_time_idx ON workflow (create_time);
CREATE INDEX workflow_status_idx ON workflow (status);

CREATE TABLE task_index (
    task_id     text PRIMARY KEY,
    workflow_id text NOT NULL
);
CREATE INDEX task_index_workflow_idx ON task_index (workflow_id);

-- Insertion order breaks ties in pop order; a re-push takes a new number.
CREATE SEQUENCE queue_seq;
CREATE TABLE queue_message (
    queue      text NOT NULL,
    message_id text NOT NULL,
    priority   integer NOT NULL,
    deliver_at bigint NOT NULL,   -- a pop moves it to now + unack_ms (visibility timeout)
    seq        bigint NOT NULL DEFAULT nextval('queue_seq'),
    PRIMARY KEY (queue, message_id)
);
CREATE INDEX queue_message_order_idx ON queue_message (queue, deliver_at, priority DESC, seq);

CREATE TABLE task_def (name text PRIMARY KEY, body bytea NOT NULL);
CREATE TABLE workflow_def (
    name    text NOT NULL,
    version integer NOT NULL,
    body    bytea NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE event_handler (name text PRIMARY KEY, body bytea NOT NULL);

-- domain_key: '' for no domain, '=' || domain otherwise (None and "" stay distinct).
CREATE TABLE poll_data (
    queue_name text NOT NULL,
    domain_key text NOT NULL,
    body       bytea NOT NULL,
    PRIMARY KEY (queue_name, domain_key)
);
CREATE TABLE task_log (
    id           bigserial PRIMARY KEY,
    task_id      text NOT NULL,
    log          text NOT NULL,
    created_time bigint NOT NULL
);
CREATE INDEX task_log_task_idx ON task_log (task_id, id);
"""

# The group-commit entry point: N commits in one statement (= one transaction), set-based.
# Each item is checked on its own (UPDATE ... WHERE version = expected / INSERT ... ON
# CONFLICT DO NOTHING); a conflicting item writes nothing and the others go ahead. Result
# per item: the new version (> 0), or -1 - current version (so -1 = absent) on a conflict.
# Task-index and queue ops carry the 1-based index of their commit ("owner") and apply only
# for owners that succeeded. The caller guarantees what makes set-based writes equal to
# sequential ones: no workflow id, task id or queue message appears in two items of one
# batch, and within an item each task id / message appears once (its final operation).
_COMMIT_BATCH = """
CREATE FUNCTION commit_batch(
    ids text[], expected integer[], names text[], wvers integer[], statuses text[],
    ctimes bigint[], utimes bigint[], etimes bigint[], corrs text[], parents text[],
    texts text[], bodies bytea[],
    t_owner integer[], t_id text[], t_add boolean[],
    q_owner integer[], q_push boolean[], q_queue text[], q_id text[], q_prio integer[],
    q_deliver bigint[]
) RETURNS integer[] LANGUAGE plpgsql AS $fn$
DECLARE
    results integer[];
BEGIN
    WITH input AS (
        SELECT * FROM unnest(ids, expected, names, wvers, statuses, ctimes, utimes, etimes,
                             corrs, parents, texts, bodies)
            WITH ORDINALITY AS t(id, exp, name, wver, status, ct, ut, et, corr, parent,
                                 txt, body, ord)
    ), upd AS (
        UPDATE workflow AS w SET
            workflow_name = i.name, workflow_version = i.wver, status = i.status,
            create_time = i.ct, update_time = i.ut, end_time = i.et, correlation_id = i.corr,
            parent_workflow_id = i.parent, search_text = i.txt, body = i.body,
            version = w.version + 1
        FROM input AS i
        WHERE i.exp > 0 AND w.workflow_id = i.id AND w.version = i.exp
        RETURNING i.ord, w.version
    ), ins AS (
        INSERT INTO workflow AS w
        SELECT id, name, wver, status, ct, ut, et, corr, parent, txt, body, 1
        FROM input WHERE exp = 0
        ON CONFLICT (workflow_id) DO NOTHING
        RETURNING w.workflow_id, w.version
    )
    -- `cur` reads the snapshot from before this statement: the version a loser met.
    SELECT coalesce(array_agg(
               coalesce(u.version, x.version, -1 - coalesce(cur.version, 0)) ORDER BY i.ord),
           '{}')
    INTO results
    FROM input AS i
    LEFT JOIN upd AS u ON u.ord = i.ord
    LEFT JOIN ins AS x ON x.workflow_id = i.id AND i.exp = 0
    LEFT JOIN workflow AS cur ON cur.workflow_id = i.id;

    DELETE FROM task_index AS t
    USING unnest(t_owner, t_id, t_add) AS x(owner, tid, add)
    WHERE NOT x.add AND results[x.owner] > 0
      AND t.task_id = x.tid AND t.workflow_id = ids[x.owner];
    INSERT INTO task_index
    SELECT x.tid, ids[x.owner] FROM unnest(t_owner, t_id, t_add) AS x(owner, tid, add)
    WHERE x.add AND results[x.owner] > 0
    ON CONFLICT (task_id) DO UPDATE SET workflow_id = EXCLUDED.workflow_id;

    DELETE FROM queue_message AS m
    USING unnest(q_owner, q_push, q_queue, q_id) AS x(owner, push, q, mid)
    WHERE NOT x.push AND results[x.owner] > 0 AND m.queue = x.q AND m.message_id = x.mid;
    INSERT INTO queue_message (queue, message_id, priority, deliver_at)
    SELECT x.q, x.mid, x.prio, x.deliver
    FROM unnest(q_owner, q_push, q_queue, q_id, q_prio, q_deliver)
        WITH ORDINALITY AS x(owner, push, q, mid, prio, deliver, ord)
    WHERE x.push AND results[x.owner] > 0
    ORDER BY x.ord  -- sequence numbers follow the order of the pushes
    ON CONFLICT (queue, message_id) DO UPDATE SET
        priority = EXCLUDED.priority, deliver_at = EXCLUDED.deliver_at, seq = EXCLUDED.seq;
    RETURN results;
END
$fn$;
"""

# Pop up to n due messages of queue q, hiding each until `deadline`, in one statement.
# A pop lost in a crash only makes its messages visible again, which at-least-once
# delivery allows anyway, so its commit does not wait for the WAL flush
# (synchronous_commit off for this transaction only): a poll costs no fsync.
_POP_MESSAGES = """
CREATE FUNCTION pop_messages(q text, now_ms bigint, n integer, deadline bigint)
RETURNS TABLE (message_id text, deliver_at bigint, priority integer, seq bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN QUERY
    UPDATE queue_message AS m SET deliver_at = pop_messages.deadline
    FROM (
        SELECT x.message_id, x.deliver_at, x.priority, x.seq FROM queue_message AS x
        WHERE x.queue = pop_messages.q AND x.deliver_at <= pop_messages.now_ms
        ORDER BY x.deliver_at, x.priority DESC, x.seq
        LIMIT pop_messages.n
        FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE m.queue = pop_messages.q AND m.message_id = due.message_id
    RETURNING due.message_id, due.deliver_at, due.priority, due.seq;
END
$fn$;
"""

# PL/pgSQL re-plans a statement for every call while it judges custom plans cheaper; for
# commit_batch's CTE that planning is most of the cost (measured: ~1 ms -> ~0.45 ms per
# one-commit call). The arrays change size, not shape, so one generic plan serves all.
_GENERIC_PLANS = """
ALTER FUNCTION commit_batch(
    text[], integer[], text[], integer[], text[], bigint[], bigint[], bigint[], text[],
    text[], text[], bytea[], integer[], text[], boolean[], integer[], boolean[], text[],
    text[], integer[], bigint[]
) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION pop_messages(text, bigint, integer, bigint)
    SET plan_cache_mode = force_generic_plan;
"""

# Workflow definitions shared by the executions that refer to them (core/store.py): a row
# is written once per ref before the first commit that names it, never changed or deleted.
_DEFINITION_BLOBS = """
CREATE TABLE definition_blob (ref text PRIMARY KEY, body bytea NOT NULL);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tables", _TABLES),
    Migration(2, "commit_batch function", _COMMIT_BATCH),
    Migration(3, "pop_messages function (no WAL flush wait for pops)", _POP_MESSAGES),
    Migration(4, "generic plans for commit_batch and pop_messages", _GENERIC_PLANS),
    Migration(5, "definition_blob: workflow definitions stored once", _DEFINITION_BLOBS),
)


def check_schema_name(schema: str) -> str:
    """Return `schema` if it is a plain lower-case identifier.

    Raises:
        BadRequest: anything else (it is spliced into DDL, so it must be an identifier).
    """
    if not SCHEMA_NAME_RE.fullmatch(schema):
        raise BadRequest(
            f"store URL: schema {schema!r} must be a lower-case identifier "
            "(letters, digits, underscores; at most 63 characters; not starting with a digit)"
        )
    return schema


async def migrate(conn: Any, schema: str) -> list[int]:
    """Create `schema` if needed and apply the migrations it lacks (asyncio side).

    Args:
        conn: an asyncpg connection (not in a transaction).
        schema: the store's schema, already checked by check_schema_name().

    Returns:
        The versions applied now (empty when the schema was current).

    Raises:
        Unavailable: the schema was migrated by a newer Podium.
    """
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"podium:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path = "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        newest = max(m.version for m in MIGRATIONS)
        if done and max(done) > newest:
            raise Unavailable(
                f"PostgreSQL schema {schema!r} is at migration {max(done)}, newer than this "
                f"Podium understands ({newest}): upgrade Podium or use another schema"
            )
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied_now.append(migration.version)
    return applied_now
