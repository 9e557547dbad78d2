"""Load -> decide -> run scripts -> commit: the one path by which a workflow changes.

Rules:
- Every change of a stored workflow goes through `Executor.stage` + a store commit, under
  the process-local workflow lock, retried on core.errors.VersionConflict (reload and
  decide again from scratch: a discarded decision's actions are never performed).
- EvaluateScript actions are answered at once with ScriptResult events and decided
  again before anything is committed, so a chain of synchronous system tasks (INLINE ->
  SET_VARIABLE -> JSON_JQ_TRANSFORM -> SWITCH ...) lands in one commit.
- The decision's queue actions become QueueOps of the same commit (QueueTask => push,
  DequeueTask => remove), plus the decider-queue timer: terminal or paused => remove,
  otherwise push at `next_wake_ms` (capped by max_postpone_ms; "no timer" => the cap, so
  every running workflow is swept at least that often and gets repaired). A decision
  that starts an async system task caps the timer at `system_task_recheck_ms`, so a
  call lost with a dead process is re-offered soon.
- Other actions are returned in the Outcome; the Engine performs them after the commit.
- `apply` starts from the workflow this process committed last when it has it
  (server/engine/workflow_cache.py): no store read and no decode (it decides on a
  working copy of the committed object), and the version check on commit still catches
  any other writer. A guard or decider that declines or raises on a cached copy
  is asked again with the store's copy, so a verdict never rests on a stale record.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgspec
import trio

from core.decisions import (
    DeciderEnv,
    Decision,
    DequeueTask,
    EvaluateScript,
    Event,
    NotifyParent,
    QueueTask,
    RunSystemTask,
    ScriptResult,
    StartChildWorkflow,
)
from core.enums import WORKFLOW_TERMINAL, WorkflowStatus
from core.errors import NotFound, Unavailable, VersionConflict
from core.models import TaskDef, Workflow
from core.store import DECIDER_QUEUE, Commit, QueueOp, Store, WorkflowRecord
from server.engine.config import EngineConfig
from server.engine.persistence import from_record, to_record
from server.engine.signals import WorkflowLocks
from server.engine.workflow_cache import WorkflowCache

DecideFn = Callable[[Workflow, Any, DeciderEnv, int], Decision]
ScriptFn = Callable[[EvaluateScript], ScriptResult | Awaitable[ScriptResult]]
# Called with the freshly loaded workflow under the lock, before deciding: may raise (an
# API error), mutate the workflow (restart with the latest definition), or return False
# to skip the decide (an update to a task that is already terminal).
Guard = Callable[[Workflow], bool]
# Called with the staged decision before it is committed: returns more events to decide
# into the same commit (and may drop its queue ops); update-v2's hand-off
# (server/engine/handoff.py).
Then = Callable[["Staged"], Sequence[Event]]
_BUILT_MAX = 1024


class Staged(msgspec.Struct, kw_only=True):
    """The merged result of one chain of decisions on one workflow."""

    workflow: Workflow
    actions: list[Any] = []
    queue_ops: list[QueueOp] = []
    added: list[str] = []
    removed: list[str] = []
    changed: bool = False
    next_wake_ms: int = 0


class Outcome(msgspec.Struct, kw_only=True):
    """What happened to one workflow: the Engine's post-commit input."""

    workflow: Workflow
    actions: list[Any] = []
    queue_ops: list[QueueOp] = []
    committed: bool = False
    skipped: bool = False  # the guard declined: nothing was decided
    wake_at_ms: int = 0  # absolute time the decider-queue message was set to (0: removed)


class Executor:
    def __init__(
        self,
        store: Store,
        *,
        now_ms: Callable[[], int],
        config: EngineConfig,
        decide: DecideFn,
        run_script: ScriptFn,
        task_defs: Callable[[], Awaitable[Mapping[str, TaskDef]]],
        active_domains: Callable[[], Mapping[str, frozenset[str]]],
    ) -> None:
        self.store = store
        self.now_ms = now_ms
        self.config = config
        self.locks = WorkflowLocks()
        # The records this process committed last: apply() decides on them without a
        # store read (server/engine/workflow_cache.py has the rules).
        self.cache = WorkflowCache()
        self._decide = decide
        self._run_script = run_script
        self._task_defs = task_defs
        self._active_domains = active_domains
        self.conflicts = 0  # version conflicts met and retried (tests and metrics)
        # workflow id -> the last commit built for it and the workflow it was built from,
        # so remember() can cache the object for a caller that passes only the commit
        # (the poll's group commit). Bounded; an entry is used only for that very commit.
        self._built: dict[str, tuple[Commit, Workflow]] = {}

    async def env_for(self, workflow: Workflow) -> DeciderEnv:
        defs = await self._task_defs()
        domains = self._active_domains() if workflow.task_to_domain else {}
        return DeciderEnv(task_defs=defs, active_domains=domains)

    async def script(self, action: EvaluateScript) -> ScriptResult:
        if self.config.scripts_in_thread:
            result = await trio.to_thread.run_sync(self._run_script, action)
        else:
            result = self._run_script(action)
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, ScriptResult)
        return result

    async def stage(
        self, workflow: Workflow, events: Sequence[Event], into: Staged | None = None
    ) -> Staged:
        """Decide `events` in order on `workflow` (mutated), answering scripts at once;
        `into`: a Staged of the same workflow to go on from."""
        env = await self.env_for(workflow)
        now = self.now_ms()
        staged = Staged(workflow=workflow) if into is None else into
        pending: list[Any] = list(events)
        scripts = 0
        while pending:
            event = pending.pop(0)
            decision = self._decide(workflow, event, env, now)
            answers: list[Any] = []
            for action in decision.actions:
                if isinstance(action, EvaluateScript):
                    scripts += 1
                    if scripts > self.config.max_chain:
                        # A runaway loop: stop here; the sweeper resumes it (the decider
                        # re-offers unfinished system tasks on Sweep).
                        staged.next_wake_ms = now
                        continue
                    answers.append(await self.script(action))
                elif isinstance(action, QueueTask):
                    staged.queue_ops.append(
                        QueueOp(
                            kind="push",
                            queue=action.queue,
                            message_id=action.task_id,
                            priority=action.priority,
                            delay_ms=action.delay_ms,
                        )
                    )
                elif isinstance(action, DequeueTask):
                    staged.queue_ops.append(
                        QueueOp(kind="remove", queue=action.queue, message_id=action.task_id)
                    )
                else:
                    staged.actions.append(action)
            pending[0:0] = answers
            staged.changed = staged.changed or decision.changed
            for task_id in decision.added_task_ids:
                staged.added.append(task_id)
            for task_id in decision.removed_task_ids:
                if task_id in staged.added:
                    staged.added.remove(task_id)
                else:
                    staged.removed.append(task_id)
            if scripts <= self.config.max_chain:
                staged.next_wake_ms = decision.next_wake_ms
        return staged

    def timer_op(self, workflow: Workflow, next_wake_ms: int, now: int) -> tuple[QueueOp, int]:
        """The decider-queue op after a decide, and the absolute time it fires (0: none)."""
        if workflow.status in WORKFLOW_TERMINAL or workflow.status is WorkflowStatus.PAUSED:
            return QueueOp(kind="remove", queue=DECIDER_QUEUE, message_id=workflow.workflow_id), 0
        cap = now + self.config.max_postpone_ms
        due = min(next_wake_ms, cap) if next_wake_ms > 0 else cap
        delay = max(0, due - now)
        op = QueueOp(
            kind="push",
            queue=DECIDER_QUEUE,
            message_id=workflow.workflow_id,
            priority=workflow.priority,
            delay_ms=delay,
        )
        return op, now + delay

    def _wake_ms(self, staged: Staged, now: int) -> int:
        wake = staged.next_wake_ms
        if any(isinstance(a, RunSystemTask | StartChildWorkflow) for a in staged.actions):
            recheck = now + self.config.system_task_recheck_ms
            wake = min(wake, recheck) if wake > 0 else recheck
        return wake

    def build_commit(
        self,
        staged: Staged,
        expected_version: int,
        extra_ops: Sequence[QueueOp] = (),
    ) -> tuple[Commit, int]:
        now = self.now_ms()
        timer, wake_at = self.timer_op(staged.workflow, self._wake_ms(staged, now), now)
        ops = [*staged.queue_ops, *extra_ops, timer]
        for action in staged.actions:
            if isinstance(action, NotifyParent):
                # If this process dies before the parent hears of the child, the parent's
                # sweep (repair) tells it; on success the parent's own commit re-arms it.
                ops.append(
                    QueueOp(
                        kind="push",
                        queue=DECIDER_QUEUE,
                        message_id=action.parent_workflow_id,
                        delay_ms=self.config.system_task_recheck_ms,
                    )
                )
        record = to_record(staged.workflow, version=expected_version)
        commit = Commit(
            record=record,
            expected_version=expected_version,
            added_task_ids=staged.added,
            removed_task_ids=staged.removed,
            queue_ops=ops,
        )
        if len(self._built) >= _BUILT_MAX:
            self._built.clear()
        self._built[staged.workflow.workflow_id] = (commit, staged.workflow)
        return commit, wake_at

    async def load(self, workflow_id: str) -> tuple[WorkflowRecord, Workflow]:
        record = await self.store.load(workflow_id)
        if record is None:
            raise NotFound(f"Workflow {workflow_id} not found")
        return record, from_record(record)

    async def apply(
        self,
        workflow_id: str,
        events: Sequence[Event],
        *,
        guard: Guard | None = None,
        extra_ops: Sequence[QueueOp] = (),
        then: Then | None = None,
    ) -> Outcome:
        """Decide `events` on the stored workflow and commit, retrying on conflicts;
        `then` may add events to the same commit (asked again on every attempt).

        Raises:
            NotFound: no such workflow.
            Unavailable: still conflicting after `conflict_retries` attempts.
            PodiumError: whatever the guard or the decider raises for API misuse.
        """
        async with self.locks.hold(workflow_id):
            cached = True
            for _ in range(self.config.conflict_retries):
                entry = self.cache.working(workflow_id) if cached else None
                from_cache, cached = entry is not None, False
                record = None
                if entry is not None:
                    # A copy: the committed object stays as committed (workflow_cache.py).
                    record, workflow = entry
                    if guard is not None and not self._guard_passes(guard, workflow):
                        # Declined or refused on the cached copy: ask the store itself.
                        self.cache.drop(workflow_id)
                        record = None
                if record is None:
                    record, workflow = await self.load(workflow_id)
                    from_cache = False
                    if guard is not None and guard(workflow) is False:
                        return Outcome(workflow=workflow, skipped=True)
                try:
                    staged = await self.stage(workflow, events)
                    more = then(staged) if then is not None else ()
                    if more:
                        await self.stage(workflow, more, into=staged)
                except Exception:
                    if not from_cache:
                        raise
                    # The decider refused the cached copy: let the store's copy decide.
                    self.cache.drop(workflow_id)
                    continue
                outcome = await self.persist(staged, record.version, extra_ops)
                if outcome is not None:
                    return outcome
        raise Unavailable(
            f"Workflow {workflow_id} is being updated concurrently; retry the request"
        )

    @staticmethod
    def _guard_passes(guard: Guard, workflow: Workflow) -> bool:
        try:
            return guard(workflow) is not False
        except Exception:
            return False

    async def persist(
        self, staged: Staged, version: int, extra_ops: Sequence[QueueOp] = ()
    ) -> Outcome | None:
        """Commit `staged` at `version`; None on a version conflict (caller retries)."""
        if not staged.changed and not staged.queue_ops and not extra_ops:
            # Nothing to write; still re-arm the timer (the sweeper popped it, maybe).
            now = self.now_ms()
            timer, wake_at = self.timer_op(staged.workflow, self._wake_ms(staged, now), now)
            await self._queue_op(timer, now)
            return Outcome(workflow=staged.workflow, actions=staged.actions, wake_at_ms=wake_at)
        commit, wake_at = self.build_commit(staged, version, extra_ops)
        if not await self.commit(commit, staged.workflow):
            self.conflicts += 1
            return None
        return Outcome(
            workflow=staged.workflow,
            actions=staged.actions,
            queue_ops=commit.queue_ops,
            committed=True,
            wake_at_ms=wake_at,
        )

    async def create(
        self, workflow: Workflow, events: Sequence[Event], then: Then | None = None
    ) -> Outcome | None:
        """Store a new workflow after deciding `events`; None if the id already exists.
        `then` may add events to the same commit, as in `apply`."""
        async with self.locks.hold(workflow.workflow_id):
            staged = await self.stage(workflow, events)
            more = then(staged) if then is not None else ()
            if more:
                await self.stage(workflow, more, into=staged)
            staged.added = [t.task_id for t in workflow.tasks]
            commit, wake_at = self.build_commit(staged, 0)
            if not await self.commit(commit, workflow):
                return None
            return Outcome(
                workflow=workflow,
                actions=staged.actions,
                queue_ops=commit.queue_ops,
                committed=True,
                wake_at_ms=wake_at,
            )

    async def commit(self, commit: Commit, workflow: Workflow | None = None) -> bool:
        """Commit to the store and keep the cache in step; False on a version conflict.
        `workflow`: the one `commit` was built from, cached with it (it must not change
        after the commit)."""
        workflow_id = commit.record.workflow_id
        try:
            version = await self.store.commit(commit, self.now_ms())
        except VersionConflict:
            self.cache.drop(workflow_id)
            return False
        except BaseException:
            # Failed, cancelled or unknown: the stored state is not known any more.
            self.cache.drop(workflow_id)
            raise
        self.remember(commit, version, workflow)
        return True

    def remember(self, commit: Commit, version: int, workflow: Workflow | None = None) -> None:
        """Cache the record of a commit the store accepted at `version`, and the
        `workflow` it was encoded from when given (nobody may change it afterwards). An
        ended workflow keeps only its record: it is rarely decided again, and its
        objects would only hold memory."""
        built = self._built.pop(commit.record.workflow_id, None)
        if workflow is None and built is not None and built[0] is commit:
            workflow = built[1]
        if workflow is not None and workflow.status in WORKFLOW_TERMINAL:
            workflow = None
        self.cache.put(msgspec.structs.replace(commit.record, version=version), workflow)

    async def _queue_op(self, op: QueueOp, now: int) -> None:
        if op.kind == "push":
            await self.store.push(
                op.queue, op.message_id, priority=op.priority, delay_ms=op.delay_ms, now_ms=now
            )
        elif op.kind == "remove":
            await self.store.remove(op.queue, op.message_id)
        else:
            await self.store.ack(op.queue, op.message_id)
