"""An in-memory stand-in for the engine and the workers, to drive the decider in tests.

Rules: it plays exactly the engine's part of the decider contract (core/decisions.py):
actions are performed in order after each decision; EvaluateScript is answered at once
with the real script runner (server.scripting); StartChildWorkflow / StartFailureWorkflow
/ START_WORKFLOW create and start real workflows here; NotifyParent feeds the parent a
ChildWorkflowUpdate; queues honour delays against a fake clock that `run()` advances to
the next queue visibility or `next_wake_ms`, where it sends a Sweep. Workers are plain
functions of the polled task. Nothing here is timed or random.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import msgspec

from core import decisions as ev
from core.enums import WORKFLOW_TERMINAL, TaskResultStatus, TaskStatus, WorkflowStatus
from core.models import TaskDef, Workflow, WorkflowDef
from core.models.execution import Task
from server.scripting import run_script

# A worker gets the polled task and answers (status, output, reason) or just an output map.
Worker = Callable[[Task], Any]
SystemRunner = Callable[[Task, dict[str, Any]], tuple[TaskStatus, dict[str, Any]]]


def find_row(wf: Workflow, task_id: str) -> Task:
    return next(t for t in wf.tasks if t.task_id == task_id)


class Driver:
    """Runs workflows to completion with scripted workers and a fake clock."""

    def __init__(
        self,
        decider: ModuleType,
        *,
        workflow_defs: Sequence[WorkflowDef] = (),
        task_defs: Sequence[TaskDef] = (),
        workers: dict[str, Worker] | None = None,
        http: SystemRunner | None = None,
        active_domains: dict[str, frozenset[str]] | None = None,
        start_ms: int = 1_700_000_000_000,
        reload: bool = False,
    ) -> None:
        self.decider = decider
        # reload=True: every decision works on a workflow decoded from its JSON, as the
        # engine's does after a store round trip (new definition and row objects).
        self.reload = reload
        self.defs: dict[str, dict[int, WorkflowDef]] = {}
        for d in workflow_defs:
            self.defs.setdefault(d.name, {})[d.version] = d
        self.env = ev.DeciderEnv(
            task_defs={td.name: td for td in task_defs}, active_domains=active_domains or {}
        )
        self.workers = workers or {}
        self.http = http
        self.now = start_ms
        self.workflows: dict[str, Workflow] = {}
        # queue name -> {task id: (workflow id, visible at)}, in insertion order
        self.queues: dict[str, dict[str, tuple[str, int]]] = {}
        self.wakes: dict[str, int] = {}
        self.published: list[ev.PublishEvent] = []
        self.failure_workflows: list[ev.StartFailureWorkflow] = []
        self.decisions: list[tuple[str, Any, ev.Decision]] = []
        self.polled: list[tuple[str, str]] = []  # (queue, reference name) in poll order
        self._counter = 0

    # ------------------------------------------------------------------ workflows

    def start(
        self,
        name: str,
        input: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        definition: WorkflowDef | None = None,
        correlation_id: str | None = None,
        task_to_domain: dict[str, str] | None = None,
        parent: tuple[str, str] | None = None,
        workflow_id: str | None = None,
    ) -> str:
        if definition is None:
            versions = self.defs[name]
            definition = versions[version if version is not None else max(versions)]
        if workflow_id is None:
            self._counter += 1
            workflow_id = f"{self._counter:08x}-0000-4000-8000-{self._counter:012x}"
        wf = Workflow(
            workflow_id=workflow_id,
            workflow_name=definition.name,
            workflow_version=definition.version,
            input=dict(input or {}),
            workflow_definition=definition,
            create_time=self.now,
            start_time=self.now,
            correlation_id=correlation_id,
            task_to_domain=dict(task_to_domain or {}),
        )
        if parent is not None:
            wf.parent_workflow_id, wf.parent_workflow_task_id = parent
        self.workflows[workflow_id] = wf
        self.decide(workflow_id, ev.StartWorkflow())
        return workflow_id

    def decide(self, workflow_id: str, event: Any) -> ev.Decision:
        if self.reload:
            self.workflows[workflow_id] = msgspec.json.decode(
                msgspec.json.encode(self.workflows[workflow_id]), type=Workflow
            )
        wf = self.workflows[workflow_id]
        decision: ev.Decision = self.decider.decide(wf, event, self.env, self.now)
        self.decisions.append((workflow_id, event, decision))
        self.wakes[workflow_id] = decision.next_wake_ms
        for action in decision.actions:
            self._perform(workflow_id, action)
        return decision

    def _perform(self, workflow_id: str, action: Any) -> None:
        kind = type(action)
        if kind is ev.QueueTask:
            for q in self.queues.values():
                q.pop(action.task_id, None)
            self.queues.setdefault(action.queue, {})[action.task_id] = (
                workflow_id,
                self.now + action.delay_ms,
            )
        elif kind is ev.DequeueTask:
            self.queues.get(action.queue, {}).pop(action.task_id, None)
        elif kind is ev.EvaluateScript:
            self.decide(workflow_id, run_script(action))
        elif kind is ev.RunSystemTask:
            self._run_system_task(workflow_id, action)
        elif kind is ev.StartChildWorkflow:
            if action.workflow_id not in self.workflows:
                self.start(
                    action.name,
                    action.input,
                    version=action.version,
                    definition=action.workflow_def,
                    correlation_id=action.correlation_id,
                    task_to_domain=action.task_to_domain,
                    parent=(workflow_id, action.task_id),
                    workflow_id=action.workflow_id,
                )
        elif kind is ev.NotifyParent:
            child = self.workflows[workflow_id]
            self.decide(
                action.parent_workflow_id,
                ev.ChildWorkflowUpdate(
                    task_id=action.parent_task_id,
                    child_workflow_id=workflow_id,
                    child_status=child.status,
                    child_output=child.output,
                    reason_for_incompletion=child.reason_for_incompletion or None,
                ),
            )
        elif kind is ev.TerminateWorkflow:
            target = self.workflows.get(action.workflow_id)
            if target is not None and target.status not in WORKFLOW_TERMINAL:
                self.decide(action.workflow_id, ev.Terminate(reason=action.reason))
        elif kind is ev.StartFailureWorkflow:
            self.failure_workflows.append(action)
            if action.name in self.defs:
                self.start(action.name, action.input, workflow_id=action.workflow_id)
        elif kind is ev.PublishEvent:
            self.published.append(action)
        else:  # pragma: no cover - a new action type the driver does not know yet
            raise AssertionError(f"driver cannot perform {action!r}")

    def _run_system_task(self, workflow_id: str, action: ev.RunSystemTask) -> None:
        wf = self.workflows[workflow_id]
        task = find_row(wf, action.task_id)
        if action.task_type == "START_WORKFLOW":
            request = action.input.get("startWorkflow") or {}
            new_id = self.start(
                request["name"],
                request.get("input"),
                version=request.get("version"),
                correlation_id=request.get("correlationId"),
                task_to_domain=request.get("taskToDomain"),
            )
            result = ev.SystemTaskResult(
                task_id=action.task_id,
                status=TaskStatus.COMPLETED,
                output_data={"workflowId": new_id},
            )
        else:
            if self.http is None:
                status, output = TaskStatus.COMPLETED, {"response": {"statusCode": 200, "body": {}}}
            else:
                status, output = self.http(task, action.input)
            result = ev.SystemTaskResult(task_id=action.task_id, status=status, output_data=output)
        self.decide(workflow_id, result)

    # ------------------------------------------------------------------ the loop

    def poll(self, queue: str, worker_id: str = "worker-1") -> Task | None:
        """Take the first visible task of a queue and mark it polled."""
        q = self.queues.get(queue, {})
        for task_id, (workflow_id, visible_at) in list(q.items()):
            if visible_at <= self.now:
                del q[task_id]
                self.decide(workflow_id, ev.TaskPolled(task_id=task_id, worker_id=worker_id))
                task = find_row(self.workflows[workflow_id], task_id)
                if task.status is TaskStatus.IN_PROGRESS:
                    self.polled.append((queue, task.reference_task_name))
                    return task
        return None

    def complete(
        self,
        task: Task | None,
        output: dict[str, Any] | None = None,
        status: TaskResultStatus = TaskResultStatus.COMPLETED,
        reason: str | None = None,
        callback_after_seconds: int = 0,
    ) -> ev.Decision:
        """Report a polled task's result; `task` may be a poll's answer, which must be a task."""
        assert task is not None, "nothing to complete: the poll found no visible task"
        return self.decide(
            task.workflow_instance_id,
            ev.TaskUpdate(
                task_id=task.task_id,
                status=status,
                output_data=output or {},
                reason_for_incompletion=reason,
                callback_after_seconds=callback_after_seconds,
            ),
        )

    def work_one(self) -> bool:
        """Let a worker handle one visible task, in queue order. False when none is visible."""
        for queue in list(self.queues):
            task = self.poll(queue)
            if task is None:
                continue
            worker = self.workers.get(task.task_def_name) or self.workers.get("*")
            answer = worker(task) if worker is not None else {}
            if isinstance(answer, tuple):
                status, output, reason = answer
                self.complete(task, output, status, reason)
            else:
                self.complete(task, answer)
            return True
        return False

    def advance(self) -> bool:
        """Move the clock to the next queue visibility or wake-up; sweep due workflows."""
        times = [at for q in self.queues.values() for (_, at) in q.values() if at > self.now]
        times += [w for wid, w in self.wakes.items() if w > 0 and self.running(wid)]
        if not times:
            return False
        self.now = max(self.now, min(times))
        for wid, wake in list(self.wakes.items()):
            if 0 < wake <= self.now and self.running(wid):
                self.decide(wid, ev.Sweep())
        return True

    def running(self, workflow_id: str) -> bool:
        return self.workflows[workflow_id].status is WorkflowStatus.RUNNING

    def run(self, max_steps: int = 2000) -> None:
        """Work and advance the clock until nothing is left to do."""
        for _ in range(max_steps):
            if not self.work_one() and not self.advance():
                return
        raise AssertionError(f"workflows still busy after {max_steps} steps")

    # ------------------------------------------------------------------ inspection

    def refs(self, workflow_id: str) -> list[str]:
        return [t.reference_task_name for t in self.workflows[workflow_id].tasks]

    def statuses(self, workflow_id: str) -> list[tuple[str, str]]:
        return [(t.reference_task_name, t.status.value) for t in self.workflows[workflow_id].tasks]

    def task(self, workflow_id: str, ref: str) -> Task:
        rows = [t for t in self.workflows[workflow_id].tasks if t.reference_task_name == ref]
        assert rows, f"no row {ref!r} in {self.refs(workflow_id)}"
        return rows[-1]

    def encoded(self, workflow_id: str) -> bytes:
        return msgspec.json.encode(self.workflows[workflow_id])
