"""The worker protocol (spec 5.5): poll with long-poll and admission limits, task updates.

Rules:
- A poll pops ids with a visibility timeout (`task_unack_ms`), decides TaskPolled for
  each, and commits every touched workflow in one `commit_many`; each commit carries the
  `ack` of its messages, so a crash between pop and commit leaves the message to come
  back after the timeout (never a task that is IN_PROGRESS without anyone holding it).
- Messages for tasks that are gone, terminal or no longer SCHEDULED are removed; tasks
  over their concurrentExecLimit or rate limit are postponed, not handed out.
- A cancelled poll (the client went away) never loses a task: pop + claim run shielded,
  and tasks claimed for a caller that is gone are put back (SCHEDULED, re-queued).
- A poll returns as soon as it has at least one task; with none it waits on the queue's
  waiter (woken by the commit that queues a task) up to `timeout_ms`, re-popping at least
  every `poll_recheck_ms`. While it waits it is open to direct hand-offs: a commit that
  would queue a task for it claims the task for it instead (server/engine/takers.py).
- A pop that comes back short marks the queue empty at the waiter generation read before
  it. A poll that finds that mark, with no push since and less than EMPTY_FOR_MS old,
  waits instead of popping: the re-poll that follows every answer and update-v2's poll
  at a workflow's end cost no store round trip while nothing was queued. A pop asking
  for at least as many messages as pushes were announced since the last empty mark
  "covers" its generation: a poll at that generation (the pollers one push woke
  together) waits for its verdict instead of popping alongside it. Other pops are never
  serialised (concurrent ones share the store's group commit; a lock around pops convoys
  update-v2's one-task polls under a backlog: measured 214 instead of 300 wf/s).
  Messages no push announces here (another process's, a lapsed visibility timeout, a
  postponed task) are seen at most EMPTY_FOR_MS later than before, and a waiting poll
  still re-pops every `poll_recheck_ms`.
- A claim starts from the workflow records this process committed last when it has them
  (the commit's version check catches other writers); a message is removed as stale only
  on the store's copy.
- Poll data (queue, domain, worker, time) is recorded at most every
  `poll_record_interval_ms` per key.
- update-v2 answers with the task its own commit handed off when there is one
  (server/engine/handoff.py), which counts as the worker's poll; otherwise it polls.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any

import trio

from core.decisions import TaskPolled, TaskUpdate
from core.enums import TASK_TERMINAL, WORKFLOW_TERMINAL, TaskResultStatus, TaskStatus, TaskType
from core.errors import BadRequest, NotFound
from core.models import Task, TaskResult, Workflow
from core.store import LogLine, PollRecord, QueueOp, WorkflowRecord
from server.engine.executor import Outcome, Staged, Then
from server.engine.handoff import Handoff
from server.engine.persistence import from_record
from server.engine.views import find_task, pending_task_by_ref, queue_name, task_queue

if TYPE_CHECKING:
    from server.engine.engine import Engine

log = logging.getLogger("podium.workers")

# How long a pop that found a queue empty stands for later polls (see the module rules).
EMPTY_FOR_MS = 50


class QueueScan:
    """The last time this process found one queue empty, and a pop in flight that takes
    every message announced since (see the module rules)."""

    __slots__ = ("covering", "covering_generation", "empty_at", "empty_generation")

    def __init__(self) -> None:
        self.empty_generation = -1
        self.empty_at = -math.inf
        self.covering: trio.Event | None = None
        self.covering_generation = -1

    def known_empty(self, generation: int, now: float) -> bool:
        return generation == self.empty_generation and now - self.empty_at < EMPTY_FOR_MS / 1000


def _scan_of(engine: Engine, queue: str) -> QueueScan:
    scan = engine.queue_scans.get(queue)
    if scan is None:
        scan = engine.queue_scans[queue] = QueueScan()
    return scan


async def _pop(engine: Engine, queue: str, count: int, generation: int) -> list[str]:
    """Pop up to `count` ids of `queue` unless it is known empty (see the module rules)."""
    scan = _scan_of(engine, queue)
    if scan.known_empty(generation, trio.current_time()):
        return []
    if scan.covering is not None and scan.covering_generation == generation:
        await scan.covering.wait()  # its verdict first: it asked for everything announced
        if scan.known_empty(generation, trio.current_time()):
            return []
    covering = None
    if scan.empty_generation >= 0 and count >= generation - scan.empty_generation:
        covering = scan.covering = trio.Event()
        scan.covering_generation = generation
    try:
        ids = await engine.store.pop(
            queue, count, unack_ms=engine.config.task_unack_ms, now_ms=engine.now_ms()
        )
        if len(ids) < count:
            scan.empty_generation, scan.empty_at = generation, trio.current_time()
        elif scan.empty_generation == generation:
            scan.empty_generation = -1  # a full pop at the marked generation: not empty
    finally:
        if covering is not None:
            covering.set()
            if scan.covering is covering:
                scan.covering = None
    return ids


async def _record_poll(
    engine: Engine, task_type: str, domain: str | None, worker: str | None
) -> None:
    now = engine.now_ms()
    engine.domain_polls.setdefault(task_type, {})[domain or ""] = now
    key = (task_type, domain or "", worker or "")
    last = engine.poll_records.get(key, -1)
    if last >= 0 and now - last < engine.config.poll_record_interval_ms:
        return
    engine.poll_records[key] = now
    await engine.store.record_poll(
        PollRecord(queue_name=task_type, domain=domain, worker_id=worker, last_poll_time=now)
    )


async def poll(
    engine: Engine,
    task_type: str,
    *,
    worker_id: str | None,
    domain: str | None,
    count: int,
    timeout_ms: int,
) -> list[Task]:
    """See Engine.poll."""
    config = engine.config
    if count < 1 or count > config.max_poll_count:
        raise BadRequest(f"count: must be between 1 and {config.max_poll_count}, got {count}")
    if timeout_ms < 0 or timeout_ms > config.max_poll_timeout_ms:
        raise BadRequest(
            "timeout: Long Poll Timeout value cannot be more than "
            f"{config.max_poll_timeout_ms // 1000} seconds (got {timeout_ms} ms)"
        )
    if not task_type:
        raise BadRequest("taskType: must not be empty")
    queue = queue_name(task_type, domain)
    await _record_poll(engine, task_type, domain, worker_id)
    deadline = trio.current_time() + timeout_ms / 1000
    got: list[Task] = []
    while True:
        generation = engine.waiters.generation(queue)
        # Pop and claim are shielded: a poll cancelled here (client gone) must not leave
        # a store call half done; tasks it claimed are given back below instead.
        with trio.CancelScope(shield=True):
            ids = await _pop(engine, queue, count - len(got), generation)
            if ids:
                got.extend(await claim(engine, queue, ids, worker_id))
        await _give_back_if_cancelled(engine, got)
        if got:
            return got
        remaining = deadline - trio.current_time()
        if remaining <= 0:
            return got
        if not ids:
            # Open to direct hand-offs while waiting (server/engine/takers.py).
            taker = engine.takers.open(queue, worker_id, count)
            try:
                await engine.waiters.wait(
                    queue, generation, min(remaining, config.poll_recheck_ms / 1000), taker.wake
                )
            except BaseException:
                with trio.CancelScope(shield=True):
                    await _give_back(engine, await engine.takers.close(taker))
                raise
            with trio.CancelScope(shield=True):
                got.extend(await engine.takers.close(taker))
            await _give_back_if_cancelled(engine, got)
            if got:
                return got


async def claim(engine: Engine, queue: str, ids: list[str], worker_id: str | None) -> list[Task]:
    """Turn popped message ids into IN_PROGRESS tasks (one group commit); see module rules."""
    store = engine.store
    owners: dict[str, list[str]] = {}
    for task_id, workflow_id in zip(ids, await _owners_of(engine, ids), strict=True):
        if workflow_id is None:
            await store.remove(queue, task_id)
        else:
            owners.setdefault(workflow_id, []).append(task_id)
    if not owners:
        return []
    task_defs = await engine.metadata.task_defs()
    executor = engine.executor
    handed: dict[str, Task] = {}
    async with executor.locks.hold_many(owners):
        found_all, cached = await _records_of(engine, list(owners))
        prepared: list[tuple[WorkflowRecord, Staged, list[QueueOp]]] = []
        now = engine.now_ms()
        for found, (workflow_id, task_ids) in zip(found_all, owners.items(), strict=True):
            record, workflow = found if found is not None else (None, None)
            stale = workflow is not None and not _all_scheduled(workflow, task_ids)
            if stale and workflow_id in cached:
                # Messages are removed only on the store's word, never a cached copy's.
                executor.cache.drop(workflow_id)
                record = await store.load(workflow_id)
                workflow = None if record is None else from_record(record)
            if record is None or workflow is None:
                for task_id in task_ids:
                    await store.remove(queue, task_id)
                continue
            events = []
            for task_id in task_ids:
                task = find_task(workflow, task_id)
                if (
                    task is None
                    or task.status is not TaskStatus.SCHEDULED
                    or workflow.status in WORKFLOW_TERMINAL
                ):
                    await store.remove(queue, task_id)
                    continue
                task_def = task_defs.get(task.task_def_name or task.task_type)
                delay = engine.limits.delay_ms(task, task_def, now)
                if delay:
                    await store.postpone(
                        queue,
                        task_id,
                        delay_ms=delay if delay > 0 else engine.config.limit_postpone_ms,
                        priority=task.workflow_priority,
                        now_ms=now,
                    )
                    continue
                engine.limits.started(workflow_id, task, task_def, now)
                events.append(TaskPolled(task_id=task_id, worker_id=worker_id))
            if not events:
                continue
            try:
                staged = await executor.stage(workflow, events)
            except Exception:
                # One broken workflow must not fail the whole poll: its messages stay
                # hidden and come back after task_unack_ms.
                log.exception("poll: deciding TaskPolled for %s failed", workflow_id)
                continue
            acks = [QueueOp(kind="ack", queue=queue, message_id=e.task_id) for e in events]
            prepared.append((record, staged, acks))
        commits = []
        wakes = []
        for record, staged, acks in prepared:
            commit, wake_at = executor.build_commit(staged, record.version, acks)
            commits.append(commit)
            wakes.append(wake_at)
        try:
            results = await store.commit_many(commits, engine.now_ms()) if commits else []
        except BaseException:
            for commit in commits:  # the stored state is not known any more
                executor.cache.drop(commit.record.workflow_id)
            raise
        outcomes: list[Outcome] = []
        retry: list[tuple[str, list[str]]] = []
        for (_, staged, acks), commit, wake_at, result in zip(
            prepared, commits, wakes, results, strict=True
        ):
            workflow = staged.workflow
            polled = [op.message_id for op in acks]
            if isinstance(result, Exception):
                executor.cache.drop(workflow.workflow_id)
                retry.append((workflow.workflow_id, polled))
                continue
            executor.remember(commit, result)
            outcomes.append(
                Outcome(
                    workflow=workflow,
                    actions=staged.actions,
                    queue_ops=commit.queue_ops,
                    committed=True,
                    wake_at_ms=wake_at,
                )
            )
            _collect(workflow, polled, handed)
    # A conflicting writer got in between: decide those again one by one (the messages
    # are still hidden from other pollers, so nobody else can take them meanwhile).
    for workflow_id, polled in retry:
        outcome = await executor.apply(
            workflow_id,
            [TaskPolled(task_id=t, worker_id=worker_id) for t in polled],
            guard=lambda wf, ids=polled: _all_scheduled(wf, ids),  # type: ignore[misc]
            extra_ops=[QueueOp(kind="ack", queue=queue, message_id=t) for t in polled],
        )
        if not outcome.skipped:
            outcomes.append(outcome)
            _collect(outcome.workflow, polled, handed)
    for outcome in outcomes:
        await engine._after_commit(outcome)
    return [handed[t] for t in ids if t in handed]


async def _records_of(
    engine: Engine, workflow_ids: list[str]
) -> tuple[list[tuple[WorkflowRecord, Workflow] | None], set[str]]:
    """The record and a workflow to decide on for each id (None: no such workflow), and
    the ids among them that came from the cache: this process's last commits where it
    has them (the commit's version check catches anyone else's; a working copy, no
    decode), the store for the rest, in one round trip."""
    cache = engine.executor.cache
    found = [cache.working(workflow_id) for workflow_id in workflow_ids]
    cached = {workflow_ids[i] for i, pair in enumerate(found) if pair is not None}
    missing = [i for i, pair in enumerate(found) if pair is None]
    if missing:
        loaded = await engine.store.load_many([workflow_ids[i] for i in missing])
        for i, record in zip(missing, loaded, strict=True):
            found[i] = None if record is None else (record, from_record(record))
    return found, cached


async def _give_back(engine: Engine, tasks: list[Task]) -> None:
    """Return tasks claimed for a poll whose caller went away: IN_PROGRESS with no
    callback delay puts a worker task back to SCHEDULED and re-queues it at once."""
    for task in tasks:
        await update_task(
            engine,
            TaskResult(
                workflow_instance_id=task.workflow_instance_id,
                task_id=task.task_id,
                status=TaskResultStatus.IN_PROGRESS,
                output_data=dict(task.output_data),
            ),
        )


async def _give_back_if_cancelled(engine: Engine, tasks: list[Task]) -> None:
    """About to answer with `tasks`: if the caller was cancelled meanwhile (client gone),
    give them back and re-raise."""
    try:
        await trio.lowlevel.checkpoint_if_cancelled()
    except trio.Cancelled:
        if tasks:
            with trio.CancelScope(shield=True):
                await _give_back(engine, tasks)
        raise


async def _owners_of(engine: Engine, task_ids: list[str]) -> list[str | None]:
    """The workflow id of each task; concurrent lookups, so a networked store pipelines
    them instead of paying one round trip after another."""
    # Tasks this process queued are known without a round trip.
    owners: list[str | None] = [engine.task_owners.get(t) for t in task_ids]
    unknown = [i for i, owner in enumerate(owners) if owner is None]
    if len(unknown) == 1:
        owners[unknown[0]] = await engine.store.workflow_id_for_task(task_ids[unknown[0]])
    elif unknown:
        limiter = trio.CapacityLimiter(8)  # a poll never floods the store's connection pool

        async def look_up(i: int) -> None:
            async with limiter:
                owners[i] = await engine.store.workflow_id_for_task(task_ids[i])

        async with trio.open_nursery() as nursery:
            for i in unknown:
                nursery.start_soon(look_up, i)
    return owners


def _all_scheduled(workflow: Workflow, task_ids: list[str]) -> bool:
    if workflow.status in WORKFLOW_TERMINAL:
        return False
    for task_id in task_ids:
        task = find_task(workflow, task_id)
        if task is None or task.status is not TaskStatus.SCHEDULED:
            return False
    return True


def _collect(workflow: Workflow, task_ids: list[str], into: dict[str, Task]) -> None:
    for task_id in task_ids:
        task = find_task(workflow, task_id)
        if task is not None and task.status is TaskStatus.IN_PROGRESS:
            into[task_id] = task


def _log_time(value: Any, now: int) -> int:
    if not isinstance(value, int) or value <= 0:
        return now
    # The official SDK sends seconds; Conductor stores milliseconds.
    return value * 1000 if value < 100_000_000_000 else value


async def update_task(engine: Engine, result: TaskResult) -> tuple[str, Task | None]:
    """See Engine.update_task. Returns (task id, the task after the update or None if
    the update was ignored)."""
    task_id, task, _ = await _update(engine, result)
    return task_id, task


async def _update(
    engine: Engine, result: TaskResult, then: Then | None = None
) -> tuple[str, Task | None, Workflow]:
    """update_task, also returning the workflow as committed; `then` may add events to
    the update's commit (Executor.apply)."""
    if not result.task_id:
        raise BadRequest("taskId: must not be empty")
    if not result.workflow_instance_id:
        raise BadRequest("workflowInstanceId: must not be empty")
    if not isinstance(result.status, TaskResultStatus):
        allowed = ", ".join(s.value for s in TaskResultStatus)
        raise BadRequest(f"status: required, one of {allowed}")
    workflow_id = result.workflow_instance_id
    task_id = result.task_id
    now = engine.now_ms()
    ignored_queue: list[str] = []

    def guard(workflow: Workflow) -> bool:
        ignored_queue.clear()  # asked again on the store's copy when a cached one declines
        task = find_task(workflow, task_id)
        if task is None:
            raise NotFound(f"Task {task_id} not found in workflow {workflow_id}")
        if task.status in TASK_TERMINAL or workflow.status in WORKFLOW_TERMINAL:
            ignored_queue.append(task_queue(task))
            return False
        return True

    reason = result.reason_for_incompletion
    sub_id = result.sub_workflow_id
    event = TaskUpdate(
        task_id=task_id,
        status=result.status,
        output_data=dict(result.output_data or {}),
        reason_for_incompletion=reason if isinstance(reason, str) else None,
        callback_after_seconds=result.callback_after_seconds or 0,
        worker_id=result.worker_id if isinstance(result.worker_id, str) else None,
        sub_workflow_id=sub_id if isinstance(sub_id, str) else None,
        extend_lease=bool(result.extend_lease),
    )
    workflow = await engine.apply(workflow_id, event, guard=guard, then=then)
    # Logs are kept once the task is known to exist (a 404 writes nothing).
    if result.logs:
        lines = [
            LogLine(task_id=task_id, log=entry.log, created_time=_log_time(entry.created_time, now))
            for entry in result.logs
        ]
        await engine.store.add_logs(lines[-engine.config.max_logs_per_task :])
    if ignored_queue:
        await engine.store.remove(ignored_queue[0], task_id)
        return task_id, None, workflow
    return task_id, find_task(workflow, task_id), workflow


async def update_task_v2(engine: Engine, result: TaskResult) -> Task | None:
    """See Engine.update_task_v2: the task the update handed off (server/engine/handoff.py),
    else a poll without waiting."""
    worker = result.worker_id if isinstance(result.worker_id, str) else None
    handoff = Handoff(engine, result.task_id, worker) if result.task_id else None
    # Shielded like a poll's pop + claim: the update may hand a task to this caller, and
    # a caller gone meanwhile gets it put back below, never left IN_PROGRESS unheld.
    with trio.CancelScope(shield=True):
        _, task, workflow = await _update(engine, result, then=handoff)
    handed = None
    if task is not None and handoff is not None and handoff.handed is not None:
        # `task` is set only when the last attempt was decided, which asked the hand-off.
        found = find_task(workflow, handoff.handed)
        if found is not None and found.status is TaskStatus.IN_PROGRESS:
            handed = found
    await _give_back_if_cancelled(engine, [] if handed is None else [handed])
    if task is None or task.status not in TASK_TERMINAL:
        return None  # (nothing is handed off then either: see server/engine/handoff.py)
    domain = task.domain if isinstance(task.domain, str) and task.domain else None
    if handed is not None:
        # Counts as this worker's poll (poll data, active domains), as the poll would.
        await _record_poll(engine, task.task_type, domain, worker)
        return handed
    tasks = await poll(
        engine, task.task_type, worker_id=worker, domain=domain, count=1, timeout_ms=0
    )
    return tasks[0] if tasks else None


async def update_task_by_ref(
    engine: Engine,
    workflow_id: str,
    task_ref_name: str,
    status: str,
    output: dict[str, Any],
    worker_id: str | None,
) -> str | None:
    """See Engine.update_task_by_ref."""
    try:
        result_status = TaskResultStatus(status.upper())
    except ValueError as exc:
        allowed = ", ".join(s.value for s in TaskResultStatus)
        raise BadRequest(f"status: {status!r} is not one of {allowed}") from exc
    workflow = await engine.get_workflow(workflow_id)
    task = pending_task_by_ref(workflow, task_ref_name)
    if task is None:
        return None
    result = TaskResult(
        workflow_instance_id=workflow_id,
        task_id=task.task_id,
        status=result_status,
        output_data=output,
        worker_id=worker_id,
    )
    task_id, _ = await update_task(engine, result)
    return task_id


async def signal(
    engine: Engine, workflow_id: str, status: str, output: dict[str, Any] | None = None
) -> Task | None:
    """See Engine.signal."""
    workflow = await engine.get_workflow(workflow_id)
    for task in workflow.tasks:
        if task.status in TASK_TERMINAL:
            continue
        if task.task_type in (TaskType.WAIT, TaskType.HUMAN):
            await engine.update_task_by_ref(
                workflow_id, task.reference_task_name, status, output or {}
            )
            return await engine.get_task(task.task_id)
    for task in workflow.tasks:
        child = task.sub_workflow_id
        if task.status is TaskStatus.IN_PROGRESS and isinstance(child, str) and child:
            with contextlib.suppress(NotFound):
                found = await engine.signal(child, status, output)
                if found is not None:
                    return found
    return None


async def pending_tasks(
    engine: Engine, task_type: str, *, domain: str | None = None, start: int = 0, count: int = 100
) -> list[Task]:
    """See Engine.pending_tasks."""
    queue = f"{domain}:{task_type}" if domain else task_type
    ids = await engine.store.peek(queue, start + count)
    tasks = []
    for task_id in ids[start:]:
        with contextlib.suppress(NotFound):
            tasks.append(await engine.get_task(task_id))
    return tasks
