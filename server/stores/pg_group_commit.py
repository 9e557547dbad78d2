"""Group commit for PostgresStore: concurrent commits share one transaction (asyncio side).

Rules:
- Runs entirely on the bridge's asyncio loop (single-threaded: no locks needed).
- `submit()` queues commits and waits for their slots. At most `max_in_flight` batch
  transactions run at once; commits arriving meanwhile wait in `pending` and go together
  into the next transaction (up to `max_batch` per transaction). Under no concurrency a
  commit goes out alone at once, so grouping never adds latency; under load, one round
  trip and one WAL flush serve many workflows.
- A batch is one `SELECT commit_batch(...)` statement (server.stores.pg_migrations): one
  round trip, one transaction, set-based writes. Items are checked one by one inside it,
  so a version conflict fails only its own slot.
- Set-based writes equal sequential ones only without overlaps, so a batch is cut before
  the first commit that touches a workflow, task id or queue message an earlier commit of
  the batch touches (it leads the next batch: order is kept), and each commit's own ops
  are reduced to the final operation per task id and per queue message.
- A batch that fails as a whole is retried when the failure is transient (deadlock or
  serialization failure between concurrent transactions); for any other error (say, a
  NUL character in a text field) each item is retried alone, so the bad one fails and
  the others commit.
- A caller cancelled before its batch starts is withdrawn; once the batch is on the wire
  its outcome stands (like any write whose reply was lost).
- A record's definition (core/store.py) is not written here: the row's `body` column holds
  an envelope naming it (`row_body`); PostgresStore writes the definition to
  definition_blob before it submits the commit.
- Counters (`transactions`, `commits`, `largest_batch`) let tests assert batching
  without timing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from core.errors import BadRequest, VersionConflict
from core.store import Commit, QueueOp, WorkflowRecord

# SQLSTATEs worth retrying a whole batch for: deadlock_detected, serialization_failure.
_TRANSIENT = frozenset({"40P01", "40001"})
_RETRIES = 3


@dataclass(slots=True)
class _Slot:
    commit: Commit
    now_ms: int
    future: asyncio.Future[int]


@dataclass(slots=True)
class GroupStats:
    transactions: int = 0
    commits: int = 0
    largest_batch: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)


# A row's `body` column: the engine's body alone, or, for a record whose definition
# travels beside its body (core/store.py), 0xC2 + msgpack (ref, body), the definition
# being in definition_blob. 0xC2 is a byte msgpack never uses, so a plain body (always
# msgpack) never starts with it.
_SHARED = b"\xc2"
_envelope_encoder = msgspec.msgpack.Encoder()
_shared_decoder = msgspec.msgpack.Decoder(tuple[str, bytes])


def row_body(record: WorkflowRecord) -> bytes:
    """The `body` column value for `record` (see `_SHARED`)."""
    if not record.definition_ref:
        return record.body
    return _SHARED + _envelope_encoder.encode((record.definition_ref, record.body))


def split_row_body(value: bytes) -> tuple[bytes, str]:
    """(body, definition_ref) from a `body` column value (ref "" = none)."""
    if value.startswith(_SHARED):
        ref, body = _shared_decoder.decode(value[1:])
        return body, ref
    return value, ""


def conflict_for(commit: Commit, code: int) -> VersionConflict:
    """The VersionConflict for commit_batch's result `code` (= -1 - current version)."""
    current = -1 - code
    wf_id, expected = commit.record.workflow_id, commit.expected_version
    if expected == 0:
        return VersionConflict(f"workflow {wf_id} already exists (version {current})")
    if current == 0:
        return VersionConflict(f"workflow {wf_id} does not exist (expected version {expected})")
    return VersionConflict(
        f"workflow {wf_id} is at version {current}, not {expected}: reload it and decide again"
    )


def batch_args(slots: list[_Slot]) -> list[Any]:
    """commit_batch's 21 array arguments for `slots`, in order."""
    ids, expected, names, wvers, statuses = [], [], [], [], []
    ctimes, utimes, etimes, corrs, parents, texts, bodies = [], [], [], [], [], [], []
    t_owner, t_id, t_add = [], [], []
    q_owner, q_push, q_queue, q_id, q_prio, q_deliver = [], [], [], [], [], []
    for owner, slot in enumerate(slots, start=1):
        c, r = slot.commit, slot.commit.record
        ids.append(r.workflow_id)
        expected.append(c.expected_version)
        names.append(r.workflow_name)
        wvers.append(r.workflow_version)
        statuses.append(r.status)
        ctimes.append(r.create_time)
        utimes.append(r.update_time)
        etimes.append(r.end_time)
        corrs.append(r.correlation_id)
        parents.append(r.parent_workflow_id)
        texts.append(r.search_text)
        bodies.append(row_body(r))
        # Removals apply before additions: a task id in both ends up added.
        added = dict.fromkeys(c.added_task_ids)
        for task_id in dict.fromkeys(c.removed_task_ids):
            if task_id not in added:
                t_owner.append(owner)
                t_id.append(task_id)
                t_add.append(False)
        for task_id in added:
            t_owner.append(owner)
            t_id.append(task_id)
            t_add.append(True)
        for op in _final_queue_ops(c):
            q_owner.append(owner)
            q_push.append(op.kind == "push")
            q_queue.append(op.queue)
            q_id.append(op.message_id)
            q_prio.append(op.priority)
            q_deliver.append(slot.now_ms + op.delay_ms)
    return [
        ids, expected, names, wvers, statuses, ctimes, utimes, etimes, corrs, parents,
        texts, bodies, t_owner, t_id, t_add,
        q_owner, q_push, q_queue, q_id, q_prio, q_deliver,
    ]  # fmt: skip


def _final_queue_ops(commit: Commit) -> list[QueueOp]:
    """The last op per (queue, message) in `commit`, ordered by when that op came."""
    final: dict[tuple[str, str], QueueOp] = {}
    for op in commit.queue_ops:
        key = (op.queue, op.message_id)
        final.pop(key, None)  # re-insert so the position is the op's own
        final[key] = op
    return list(final.values())


def _keys(commit: Commit) -> set[tuple[str, str, str]]:
    """What `commit` writes besides queues' neighbours: its workflow, tasks, messages."""
    keys = {("wf", "", commit.record.workflow_id)}
    keys.update(("task", "", t) for t in commit.added_task_ids)
    keys.update(("task", "", t) for t in commit.removed_task_ids)
    keys.update(("msg", op.queue, op.message_id) for op in commit.queue_ops)
    return keys


def take_batch(pending: list[_Slot], max_batch: int) -> list[_Slot]:
    """Remove and return the longest prefix of `pending` (<= max_batch) without overlaps."""
    seen: set[tuple[str, str, str]] = set()
    cut = 0
    for slot in pending[:max_batch]:
        keys = _keys(slot.commit)
        if cut and not seen.isdisjoint(keys):
            break
        seen |= keys
        cut += 1
    batch = pending[:cut]
    del pending[:cut]
    return batch


_CALL = "SELECT commit_batch(" + ", ".join(f"${i}" for i in range(1, 22)) + ")"


class GroupCommitter:
    """Batches concurrent commits into shared transactions on an asyncpg pool."""

    def __init__(self, pool: Any, *, max_batch: int = 128, max_in_flight: int = 1) -> None:
        self._pool = pool
        self._pending: list[_Slot] = []
        self._in_flight = 0
        self._drainers: set[asyncio.Task[None]] = set()
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.stats = GroupStats()

    async def submit(self, commits: list[Commit], now_ms: int) -> list[int | Exception]:
        """Commit each of `commits` (asyncio side); a conflict is returned in its slot."""
        loop = asyncio.get_running_loop()
        slots = [_Slot(c, now_ms, loop.create_future()) for c in commits]
        self._pending.extend(slots)
        while self._in_flight < self.max_in_flight and self._pending:
            self._in_flight += 1
            # Keep a reference: the loop holds tasks only weakly.
            task = loop.create_task(self._drain())
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)
        try:
            await asyncio.wait([s.future for s in slots])
        except asyncio.CancelledError:
            # Withdraw what has not gone out yet; what has goes on, unobserved.
            mine = {id(s) for s in slots}
            self._pending = [s for s in self._pending if id(s) not in mine]
            for slot in slots:  # nobody will read these outcomes: mark them retrieved
                slot.future.add_done_callback(_consume)
                slot.future.cancel()
            raise
        results: list[int | Exception] = []
        for slot in slots:
            exc = slot.future.exception()
            results.append(exc if exc is not None else slot.future.result())  # type: ignore[arg-type]
        return results

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._run(take_batch(self._pending, self.max_batch))
        finally:
            self._in_flight -= 1

    async def _run(self, batch: list[_Slot]) -> None:
        try:
            codes = await self._execute(batch)
        except Exception as exc:
            if len(batch) == 1:
                _settle_error(batch[0], exc)
                return
            for slot in batch:  # isolate the failing item
                try:
                    _settle(slot, (await self._execute([slot]))[0])
                except Exception as item_exc:
                    _settle_error(slot, item_exc)
            return
        for slot, code in zip(batch, codes, strict=True):
            _settle(slot, code)

    @property
    def in_flight(self) -> int:
        """Batch transactions running now."""
        return self._in_flight

    @property
    def pending(self) -> int:
        """Commits waiting for the next transaction (tests use it to stage a batch)."""
        return len(self._pending)

    async def _execute(self, batch: list[_Slot]) -> list[int]:
        args = batch_args(batch)
        for attempt in range(_RETRIES):
            try:
                codes: list[int] = await self._pool.fetchval(_CALL, *args)
            except asyncpg.PostgresError as exc:
                if exc.sqlstate in _TRANSIENT and attempt + 1 < _RETRIES:
                    continue
                if len(batch) == 1 and isinstance(exc, asyncpg.DataError):
                    wf_id = batch[0].commit.record.workflow_id
                    raise BadRequest(
                        f"PostgreSQL rejected workflow {wf_id!r}: {exc} (text fields cannot "
                        "hold NUL characters)"
                    ) from exc
                raise
            stats = self.stats
            stats.transactions += 1
            stats.commits += len(batch)
            stats.largest_batch = max(stats.largest_batch, len(batch))
            stats.batch_sizes[len(batch)] = stats.batch_sizes.get(len(batch), 0) + 1
            return codes
        raise AssertionError("unreachable")  # pragma: no cover


def _consume(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(slot: _Slot, code: int) -> None:
    if slot.future.done():
        return
    if code > 0:
        slot.future.set_result(code)
    else:
        slot.future.set_exception(conflict_for(slot.commit, code))


def _settle_error(slot: _Slot, exc: Exception) -> None:
    if not slot.future.done():
        slot.future.set_exception(exc)
