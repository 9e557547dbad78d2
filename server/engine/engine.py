"""The Engine: the one place that joins the store, the queues and the decider.

Rules:
- The REST layer calls only Engine methods; each documents its errors (core.errors, so
  the REST layer maps them to HTTP statuses). Nothing here parses HTTP.
- Every workflow change goes through Executor.apply (lock, load, decide, scripts,
  atomic commit with its queue ops, conflict retry). Post-commit actions run after the
  workflow lock is released: child starts, parent notifications, terminations, failure
  workflows and event publishing are awaited in line (so an API call returns with their
  effects visible); HTTP and START_WORKFLOW tasks run in the Engine's nursery and come
  back as SystemTaskResult events.
- Long-pollers are woken after the commit that queued their task; the sweeper is told of
  every timer earlier than the one it sleeps towards.
- `run()` must be running (in a nursery) for background work: the sweeper, system tasks,
  delayed long-poll wake-ups. Calls that need it fail loudly if it is not.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import trio

from core.decisions import (
    DecideNow,
    Event,
    NotifyParent,
    Rerun,
    SkipTask,
    SystemTaskResult,
)
from core.enums import (
    TASK_TERMINAL,
    WORKFLOW_TERMINAL,
)
from core.errors import (
    NotFound,
)
from core.models import (
    PollData,
    RerunWorkflowRequest,
    SearchResult,
    SkipTaskRequest,
    StartWorkflowRequest,
    Task,
    TaskExecLog,
    TaskResult,
    Workflow,
    WorkflowSummary,
)
from core.store import DECIDER_QUEUE, LogLine, SearchRequest, Store
from server.engine import operations, post_commit, starting, workers
from server.engine.config import EngineConfig
from server.engine.events import EventBus
from server.engine.executor import DecideFn, Executor, Guard, Outcome, ScriptFn, Staged, Then
from server.engine.limits import AdmissionLimits
from server.engine.metadata import MetadataCache
from server.engine.persistence import from_record
from server.engine.signals import QueueWaiters, TaskOwners
from server.engine.sweeper import Sweeper
from server.engine.system_tasks import SystemTaskRunner
from server.engine.takers import HandToWaiting, Takers
from server.engine.views import find_task, to_summary

log = logging.getLogger("podium.engine")


def wall_clock_ms() -> int:
    """Epoch milliseconds from the system clock (the Engine's default clock)."""
    return time.time_ns() // 1_000_000


def _default_decide() -> DecideFn:
    module = importlib.import_module("hotpath.decider")
    decide: DecideFn = module.decide
    return decide


def _default_run_script() -> ScriptFn:
    module = importlib.import_module("server.scripting")
    run_script: ScriptFn = module.run_script
    return run_script


class Engine:
    """Facade over store + queues + decider. Construct, then run `run()` in a nursery."""

    def __init__(
        self,
        store: Store,
        *,
        now_ms: Callable[[], int] = wall_clock_ms,
        config: EngineConfig | None = None,
        decide: DecideFn | None = None,
        run_script: ScriptFn | None = None,
    ) -> None:
        self.store = store
        self.now_ms = now_ms
        self.config = config or EngineConfig()
        self.metadata = MetadataCache(store, now_ms, self.config.metadata_ttl_ms)
        self.waiters = QueueWaiters()
        self.takers = Takers()  # waiting polls open to direct hand-offs
        self.task_owners = TaskOwners()
        self.limits = AdmissionLimits()
        # task type -> domain -> last poll time (ms), for taskToDomain fallback lists.
        self.domain_polls: dict[str, dict[str, int]] = {}
        self.poll_records: dict[tuple[str, str, str], int] = {}
        # queue -> when this process last found it empty (server.engine.workers rules).
        self.queue_scans: dict[str, workers.QueueScan] = {}
        self.executor = Executor(
            store,
            now_ms=now_ms,
            config=self.config,
            decide=decide or _default_decide(),
            run_script=run_script or _default_run_script(),
            task_defs=self.metadata.task_defs,
            active_domains=self._active_domains,
        )
        self.sweeper = Sweeper(self)
        self.system_tasks = SystemTaskRunner(self)
        self.events = EventBus(self)
        self._nursery: trio.Nursery | None = None
        # workflow id -> event set after its next commit (execute_workflow waits on it).
        self._changes: dict[str, trio.Event] = {}

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the background machinery (sweeper, system tasks, delayed wake-ups) forever.

        Use `await nursery.start(engine.run)`; cancel the nursery to stop.
        """
        async with self.system_tasks.http_client(), trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.waiters.run)
            nursery.start_soon(self.sweeper.run)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("Engine.run() is not running: start it in a nursery first")
        return self._nursery

    def metadata_changed(self) -> None:
        """Drop cached task definitions and event handlers (call after a metadata write)."""
        self.metadata.invalidate()

    def _active_domains(self) -> dict[str, frozenset[str]]:
        horizon = self.now_ms() - self.config.active_worker_ms
        return {
            task_type: frozenset(d for d, at in polls.items() if at >= horizon)
            for task_type, polls in self.domain_polls.items()
        }

    # ------------------------------------------------------------------ starting

    async def start_workflow(
        self,
        request: StartWorkflowRequest,
        *,
        workflow_id: str | None = None,
        parent_workflow_id: str | None = None,
        parent_workflow_task_id: str | None = None,
    ) -> str:
        """Create and start a workflow; returns its id.

        The definition is `request.workflow_def` when given (an ephemeral workflow),
        otherwise the stored one of `request.name` at `request.version` (latest when
        absent). The definition's `inputTemplate` fills absent input keys. The first
        decide (and any chain of system tasks it starts) happens before this returns.

        Args:
            request: Conductor's StartWorkflowRequest.
            workflow_id: a decided id (sub-workflows, failure workflows); if a workflow
                with that id exists already, nothing happens and the id is returned.
            parent_workflow_id: set for SUB_WORKFLOW children.
            parent_workflow_task_id: the parent's SUB_WORKFLOW task id.

        Raises:
            BadRequest: missing name, explicit null input, priority outside 0..99.
            DefinitionError: an invalid inline `workflowDef` (400, every problem with its
                path, e.g. `workflowDef.tasks[0].taskReferenceName`).
            NotFound: no definition with that name/version.
        """
        key = request.idempotency_key
        keyed = workflow_id is None and isinstance(key, str) and bool(key)
        if keyed:
            workflow_id = starting.idempotent_id(request.name, str(key))
        outcome = await self._create(
            request,
            workflow_id=workflow_id,
            parent_workflow_id=parent_workflow_id,
            parent_workflow_task_id=parent_workflow_task_id,
        )
        if outcome is None:
            assert workflow_id is not None
            if keyed:
                return await starting.existing_for_key(self, workflow_id, request)
            return workflow_id
        await self._after_commit(outcome)
        return outcome.workflow.workflow_id

    async def _create(
        self,
        request: StartWorkflowRequest,
        *,
        workflow_id: str | None,
        parent_workflow_id: str | None,
        parent_workflow_task_id: str | None,
    ) -> Outcome | None:
        return await starting.create(
            self,
            request,
            workflow_id=workflow_id,
            parent_workflow_id=parent_workflow_id,
            parent_workflow_task_id=parent_workflow_task_id,
        )

    async def execute_workflow(
        self,
        request: StartWorkflowRequest,
        *,
        wait_until_task_refs: Sequence[str] = (),
        wait_for_seconds: float = 10,
    ) -> Workflow:
        """Start a workflow and wait until it ends, or one of `wait_until_task_refs`
        has a terminal task, or `wait_for_seconds` pass (`POST /workflow/execute`).

        Returns:
            The workflow (with tasks) at that moment; the caller tells the cases apart by
            its status and tasks.

        Raises:
            Whatever start_workflow raises.
        """
        workflow_id = await self.start_workflow(request)
        targets = set(wait_until_task_refs)
        with trio.move_on_after(max(0.0, wait_for_seconds)):
            while True:
                changed = self._changes.setdefault(workflow_id, trio.Event())
                workflow = await self.get_workflow(workflow_id)
                if workflow.status in WORKFLOW_TERMINAL or any(
                    t.reference_task_name in targets and t.status in TASK_TERMINAL
                    for t in workflow.tasks
                ):
                    return workflow
                await changed.wait()
        self._changes.pop(workflow_id, None)
        return await self.get_workflow(workflow_id)

    # ------------------------------------------------------------------ reading

    async def get_workflow(self, workflow_id: str, include_tasks: bool = True) -> Workflow:
        """The workflow; with `include_tasks=False` its `tasks` is [].

        Raises:
            NotFound: unknown id.
        """
        _, workflow = await self.executor.load(workflow_id)
        if not include_tasks:
            workflow.tasks = []
        return workflow

    async def get_workflows(self, workflow_ids: list[str], include_tasks: bool) -> list[Workflow]:
        """Existing workflows among `workflow_ids` (missing ones are left out), in order."""
        records = await self.store.load_many(workflow_ids)
        result = []
        for record in records:
            if record is not None:
                workflow = from_record(record)
                if not include_tasks:
                    workflow.tasks = []
                result.append(workflow)
        return result

    async def running_ids(self, name: str, version: int | None) -> list[str]:
        """Ids of RUNNING (and PAUSED) workflows of `name` (`version=None`: any version)."""
        return await self.store.running_ids(name, version)

    async def correlated(
        self, name: str, correlation_id: str, *, include_closed: bool, include_tasks: bool
    ) -> list[Workflow]:
        """Workflows of `name` with `correlation_id`; only non-terminal unless include_closed."""
        ids = await self.store.ids_by_correlation(name, correlation_id, include_closed)
        return await self.get_workflows(ids, include_tasks)

    async def search(self, request: SearchRequest) -> SearchResult[WorkflowSummary]:
        """`GET /workflow/search`: the store filters/sorts/pages, results become summaries."""
        total, workflows = await self._search_workflows(request)
        return SearchResult(total_hits=total, results=[to_summary(w) for w in workflows])

    async def search_v2(self, request: SearchRequest) -> SearchResult[Workflow]:
        """`GET /workflow/search-v2`: full workflows (with tasks)."""
        total, workflows = await self._search_workflows(request)
        return SearchResult(total_hits=total, results=workflows)

    async def _search_workflows(self, request: SearchRequest) -> tuple[int, list[Workflow]]:
        total, records = await self.store.search(request)
        missing = [r.workflow_id for r in records if not r.body]
        loaded = {}
        if missing:
            for record in await self.store.load_many(missing):
                if record is not None:
                    loaded[record.workflow_id] = record
        workflows = []
        for record in records:
            full = record if record.body else loaded.get(record.workflow_id)
            if full is not None:
                workflows.append(from_record(full))
        return total, workflows

    async def get_task(self, task_id: str) -> Task:
        """The task with that id, as its workflow holds it now.

        Raises:
            NotFound: unknown task id.
        """
        workflow_id = self.task_owners.get(task_id) or await self.store.workflow_id_for_task(
            task_id
        )
        if workflow_id is not None:
            record = await self.store.load(workflow_id)
            if record is not None:
                task = find_task(from_record(record), task_id)
                if task is not None:
                    return task
        raise NotFound(f"No such task found by id: {task_id}")

    # ------------------------------------------------------------------ applying

    async def apply(
        self,
        workflow_id: str,
        event: Event,
        *,
        guard: Guard | None = None,
        then: Then | None = None,
    ) -> Workflow:
        """Decide one event on a stored workflow, commit, then perform its actions;
        `then` may add events to the same commit (see Executor.apply). Tasks the decision
        queues go to long polls waiting on this process when there are any
        (server/engine/takers.py), after `then` has had its pick.

        Raises:
            NotFound: unknown workflow.
            Unavailable: could not commit after repeated version conflicts.
            PodiumError: the decider's (or guard's) verdict on API misuse.
        """
        hand = HandToWaiting(self)

        def then_hand(staged: Staged) -> Sequence[Event]:
            first = then(staged) if then is not None else ()
            return [*first, *hand(staged)]

        outcome = None
        try:
            outcome = await self.executor.apply(workflow_id, [event], guard=guard, then=then_hand)
        finally:
            hand.settle(outcome)
        await self._after_commit(outcome)
        return outcome.workflow

    async def _after_commit(self, outcome: Outcome) -> None:
        await post_commit.after_commit(self, outcome)

    async def _notify_parent(self, child: Workflow, action: NotifyParent) -> None:
        await post_commit.notify_parent(self, child, action)

    async def system_task_result(self, workflow_id: str, result: SystemTaskResult) -> None:
        """Feed an async system task's outcome back (ignored if the task is already done)."""
        await post_commit.system_task_result(self, workflow_id, result)

    # ------------------------------------------------------------------ operator commands

    async def pause(self, workflow_id: str) -> None:
        """PAUSED; no-op if already paused. Raises Conflict if terminal, NotFound."""
        return await operations.pause(self, workflow_id)

    async def resume(self, workflow_id: str) -> None:
        """RUNNING again and decided. Raises IllegalTransition if not PAUSED, NotFound."""
        return await operations.resume(self, workflow_id)

    async def terminate(self, workflow_id: str, reason: str | None = None) -> None:
        """TERMINATED (no failure workflow); no-op if already TERMINATED.

        Raises:
            Conflict: the workflow already ended otherwise ("Cannot terminate a COMPLETED
                workflow.").
            NotFound: unknown id.
        """
        return await operations.terminate(self, workflow_id, reason)

    async def restart(self, workflow_id: str, *, use_latest_definitions: bool = False) -> None:
        """Start a terminal workflow over with the same id (optionally the latest def).

        Raises:
            Conflict: not terminal. NotFound: unknown id or latest definition gone.
        """
        return await operations.restart(
            self, workflow_id, use_latest_definitions=use_latest_definitions
        )

    async def retry(self, workflow_id: str, *, resume_subworkflow_tasks: bool = False) -> None:
        """Retry the failed tasks of a terminal workflow (decider rules, spec 5.8).

        Raises:
            NotFound: unknown id, or the workflow is still running (Conductor answers 404).
            Conflict: nothing retryable.
        """
        return await operations.retry(
            self, workflow_id, resume_subworkflow_tasks=resume_subworkflow_tasks
        )

    async def rerun(self, workflow_id: str, request: RerunWorkflowRequest) -> str:
        """Rerun a terminal workflow (same id) from the start or from a task; returns the id."""
        await self.apply(workflow_id, Rerun(request=request))
        return workflow_id

    async def skip_task(
        self, workflow_id: str, task_reference_name: str, request: SkipTaskRequest | None = None
    ) -> None:
        """Mark a not-yet-scheduled task SKIPPED so the flow hops over it."""
        task_input = (
            request.task_input if request and isinstance(request.task_input, dict) else None
        )
        task_output = (
            request.task_output if request and isinstance(request.task_output, dict) else None
        )
        await self.apply(
            workflow_id,
            SkipTask(
                task_reference_name=task_reference_name,
                task_input=task_input,
                task_output=task_output,
            ),
        )

    async def reset_callbacks(self, workflow_id: str) -> None:
        """SCHEDULED worker tasks waiting out callbackAfterSeconds become pollable now."""
        return await operations.reset_callbacks(self, workflow_id)

    async def decide(self, workflow_id: str) -> None:
        """Run the decider now (`PUT /workflow/decide/{id}`)."""
        await self.apply(workflow_id, DecideNow())

    async def requeue_sweep(self, workflow_id: str) -> None:
        """Push the workflow into the decider queue for an immediate sweep."""
        await self.executor.load(workflow_id)
        await self.store.push(DECIDER_QUEUE, workflow_id, delay_ms=0, now_ms=self.now_ms())
        self.sweeper.notify(self.now_ms())

    async def verify_and_repair(self, workflow_id: str) -> bool:
        """Re-queue missing task messages and the timer of a running workflow
        (`POST /admin/consistency/verifyAndRepair/{id}`); True if anything was repaired.

        Raises:
            NotFound: unknown id.
        """
        return await operations.verify_and_repair(self, workflow_id)

    async def remove(self, workflow_id: str) -> None:
        """Delete the execution, its pending task messages and its timer (any status).

        Raises:
            NotFound: unknown id.
        """
        return await operations.remove(self, workflow_id)

    # ------------------------------------------------------------------ workers

    async def poll(
        self,
        task_type: str,
        *,
        worker_id: str | None = None,
        domain: str | None = None,
        count: int = 1,
        timeout_ms: int = 0,
    ) -> list[Task]:
        """Hand up to `count` SCHEDULED tasks of `task_type` to a worker (IN_PROGRESS).

        Waits up to `timeout_ms` for the first task (long poll; woken as soon as one is
        queued). Returns [] when none came. See server.engine.workers for the rules.

        Raises:
            BadRequest: count < 1 or above max_poll_count, timeout outside 0..5000 ms.
        """
        return await workers.poll(
            self,
            task_type,
            worker_id=worker_id,
            domain=domain,
            count=count,
            timeout_ms=timeout_ms,
        )

    async def update_task(self, result: TaskResult) -> str:
        """Apply a worker's TaskResult; returns the task id.

        Updates to a terminal task or a task of a terminal workflow are ignored (the
        id is still returned: Conductor answers 200). Logs are appended.

        Raises:
            BadRequest: empty taskId / workflowInstanceId, or no status.
            NotFound: unknown workflow or task.
        """
        task_id, _ = await workers.update_task(self, result)
        return task_id

    async def update_task_v2(self, result: TaskResult) -> Task | None:
        """`POST /tasks/update-v2`: update, then (if the task ended) the next task of the
        same type and domain for the same worker, without waiting: the task this update
        scheduled when there is one (handed off in the update's own commit, see
        server/engine/handoff.py), otherwise a poll."""
        return await workers.update_task_v2(self, result)

    async def update_task_by_ref(
        self,
        workflow_id: str,
        task_ref_name: str,
        status: str,
        output: dict[str, Any] | None = None,
        worker_id: str | None = None,
    ) -> str | None:
        """Update the latest pending task with that reference name; its id, or None if
        there is none. Raises BadRequest for an unknown status, NotFound for the workflow."""
        return await workers.update_task_by_ref(
            self, workflow_id, task_ref_name, status, output or {}, worker_id
        )

    async def signal(
        self, workflow_id: str, status: str, output: dict[str, Any] | None = None
    ) -> Task | None:
        """`POST /tasks/{workflowId}/{status}/signal`: update the first pending WAIT or
        HUMAN task of the workflow, else of its running sub-workflows (depth first).

        Returns:
            The task as updated, or None when no such task is pending.

        Raises:
            BadRequest: unknown status. NotFound: unknown workflow.
        """
        return await workers.signal(self, workflow_id, status, output)

    async def pending_tasks(
        self, task_type: str, *, domain: str | None = None, start: int = 0, count: int = 100
    ) -> list[Task]:
        """Tasks waiting in the `[domain:]task_type` queue, in delivery order (admin)."""
        return await workers.pending_tasks(self, task_type, domain=domain, start=start, count=count)

    async def add_task_log(self, task_id: str, line: str) -> None:
        """Append one execution log line to a task."""
        await self.store.add_logs([LogLine(task_id=task_id, log=line, created_time=self.now_ms())])

    async def get_task_logs(self, task_id: str) -> list[TaskExecLog]:
        lines = await self.store.get_logs(task_id)
        return [
            TaskExecLog(log=x.log, task_id=x.task_id, created_time=x.created_time) for x in lines
        ]

    async def queue_size(self, task_type: str, domain: str | None = None) -> int:
        """Messages (visible + in flight) in the `[domain:]task_type` queue."""
        return await self.store.size(f"{domain}:{task_type}" if domain else task_type)

    async def queue_sizes(self) -> dict[str, int]:
        """Every non-empty task queue by name, sorted (the decider queue is left out)."""
        sizes = await self.store.sizes()
        return {k: sizes[k] for k in sorted(sizes) if k != DECIDER_QUEUE}

    async def poll_data(self, task_type: str | None = None) -> list[PollData]:
        """Last poll per (queue, domain, worker); `None` = every task type."""
        records = await self.store.poll_data(task_type)
        return [
            PollData(
                queue_name=r.queue_name,
                domain=r.domain,
                worker_id=r.worker_id,
                last_poll_time=r.last_poll_time,
            )
            for r in records
        ]

    async def publish_event(
        self, queue_name: str, payload: dict[str, Any], message_id: str | None = None
    ) -> int:
        """Deliver a message to the event handlers listening on `queue_name`
        (e.g. "conductor:wf:ref", "sqs:q"); returns how many handler actions ran."""
        return await self.events.publish(queue_name, payload, message_id=message_id)
