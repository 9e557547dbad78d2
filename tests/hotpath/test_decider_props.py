"""Property tests: generated definitions and worker outcomes, driven step by step.

Invariants after every step:
- the compiled and pure-Python twins, fed deep copies of the same inputs, leave identical
  workflows and return identical decisions;
- a (reference name, retry count) pair is never scheduled twice (loop rows carry their
  iteration in the reference name);
- a RUNNING workflow is waiting on a worker (a SCHEDULED or IN_PROGRESS worker row) or on
  a timer (`next_wake_ms` > 0); a terminal one has no active row.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import hotpath
from core import decisions as ev
from core.enums import WORKFLOW_TERMINAL, TaskResultStatus, TaskStatus, WorkflowStatus
from core.models import TaskDef, Workflow
from tests.hotpath.defs import T0, wdef, workflow

TWINS = [hotpath.load_twin("decider", compiled=False)]
if not hotpath.PURE_PYTHON:
    TWINS.insert(0, hotpath.load_twin("decider", compiled=True))

WORKER_OUTCOMES = st.sampled_from(
    [TaskResultStatus.COMPLETED] * 4
    + [
        TaskResultStatus.FAILED,
        TaskResultStatus.FAILED_WITH_TERMINAL_ERROR,
        TaskResultStatus.IN_PROGRESS,
    ]
)
ACTIVE = (TaskStatus.SCHEDULED, TaskStatus.IN_PROGRESS)
RETRYABLE = (
    TaskStatus.FAILED,
    TaskStatus.FAILED_WITH_TERMINAL_ERROR,
    TaskStatus.TIMED_OUT,
    TaskStatus.CANCELED,
)
SYSTEM_TYPES = {"FORK", "JOIN", "SWITCH", "DO_WHILE", "WAIT", "SET_VARIABLE", "NOOP"}


@st.composite
def task_lists(draw: Any, refs: Any, depth: int = 0) -> list[dict[str, Any]]:
    """A sequence of 1-3 tasks; operators nest up to two levels."""
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        kinds = ["SIMPLE", "SIMPLE", "WAIT", "SET_VARIABLE", "NOOP"]
        if depth < 2:
            kinds += ["FORK_JOIN", "SWITCH", "DO_WHILE"]
        kind = draw(st.sampled_from(kinds))
        ref = f"{kind.lower()}_{next(refs)}"
        if kind == "SIMPLE":
            out.append(
                {
                    "name": draw(st.sampled_from(["w1", "w2"])),
                    "taskReferenceName": ref,
                    "optional": draw(st.booleans()),
                    "retryCount": draw(st.integers(0, 2)),
                    "inputParameters": {"x": "${workflow.input.x}"},
                }
            )
        elif kind == "WAIT":
            out.append(
                {
                    "name": ref,
                    "taskReferenceName": ref,
                    "type": "WAIT",
                    "inputParameters": {"duration": f"{draw(st.integers(1, 90))} seconds"},
                }
            )
        elif kind in ("SET_VARIABLE", "NOOP"):
            out.append(
                {"name": ref, "taskReferenceName": ref, "type": kind, "inputParameters": {"v": ref}}
            )
        elif kind == "FORK_JOIN":
            branches = [draw(task_lists(refs, depth + 1)) for _ in range(draw(st.integers(2, 3)))]
            out.append(
                {"name": ref, "taskReferenceName": ref, "type": "FORK_JOIN", "forkTasks": branches}
            )
            out.append(
                {
                    "name": "join",
                    "taskReferenceName": f"{ref}_join",
                    "type": "JOIN",
                    "joinOn": [b[-1]["taskReferenceName"] for b in branches],
                }
            )
        elif kind == "SWITCH":
            out.append(
                {
                    "name": ref,
                    "taskReferenceName": ref,
                    "type": "SWITCH",
                    "evaluatorType": "value-param",
                    "expression": "c",
                    "inputParameters": {"c": "${workflow.input.c}"},
                    "decisionCases": {"a": draw(task_lists(refs, depth + 1)), "b": []},
                    "defaultCase": draw(task_lists(refs, depth + 1)),
                }
            )
        else:
            out.append(
                {
                    "name": ref,
                    "taskReferenceName": ref,
                    "type": "DO_WHILE",
                    "loopCondition": "",
                    "items": "${workflow.input.items}",
                    "loopOver": draw(task_lists(refs, depth + 1)),
                }
            )
    return out


@st.composite
def definitions(draw: Any) -> Any:
    return wdef(draw(task_lists(itertools.count())), name="gen")


class DeciderMachine(RuleBasedStateMachine):
    """One generated workflow, decided by every twin in lock step."""

    @initialize(
        defn=definitions(), case=st.sampled_from(["a", "b", "z"]), n_items=st.integers(0, 2)
    )
    def start(self, defn: Any, case: str, n_items: int) -> None:
        self.env = ev.DeciderEnv(
            task_defs={
                "w1": TaskDef(
                    name="w1", retry_count=1, retry_delay_seconds=1, response_timeout_seconds=120
                )
            }
        )
        base = workflow(defn, {"x": 1, "c": case, "items": list(range(n_items))})
        self.wfs: list[Workflow] = [copy.deepcopy(base) for _ in TWINS]
        self.now = T0
        self.decision: ev.Decision = ev.Decision()
        self.apply(ev.StartWorkflow())

    def apply(self, event: Any) -> None:
        results = []
        for decider, wf in zip(TWINS, self.wfs, strict=True):
            results.append(decider.decide(wf, copy.deepcopy(event), self.env, self.now))
        encoded = {msgspec.json.encode(d) for d in results}
        assert len(encoded) == 1, f"twins decided differently on {event!r}"
        states = {msgspec.json.encode(wf) for wf in self.wfs}
        assert len(states) == 1, f"twins left different workflows after {event!r}"
        self.decision = results[0]

    @property
    def wf(self) -> Workflow:
        return self.wfs[0]

    def worker_rows(self, status: TaskStatus) -> list[Any]:
        return [t for t in self.wf.tasks if t.status is status and t.task_type not in SYSTEM_TYPES]

    @rule(data=st.data(), outcome=WORKER_OUTCOMES)
    def work(self, data: Any, outcome: TaskResultStatus) -> None:
        rows = self.worker_rows(TaskStatus.SCHEDULED) + self.worker_rows(TaskStatus.IN_PROGRESS)
        if not rows or self.wf.status in WORKFLOW_TERMINAL:
            return
        row = data.draw(st.sampled_from(rows))
        if row.status is TaskStatus.SCHEDULED:
            self.apply(ev.TaskPolled(task_id=row.task_id, worker_id="w"))
        self.now += 1000
        self.apply(
            ev.TaskUpdate(
                task_id=row.task_id,
                status=outcome,
                output_data={"o": row.reference_task_name},
                reason_for_incompletion="r",
                callback_after_seconds=5,
            )
        )

    @rule(seconds=st.integers(0, 150))
    def sweep(self, seconds: int) -> None:
        self.now += seconds * 1000
        self.apply(ev.Sweep())

    @rule(restart=st.booleans())
    def recover(self, restart: bool) -> None:
        """Retry or restart an ended workflow (as the API would)."""
        wf = self.wf
        if wf.status not in WORKFLOW_TERMINAL:
            return
        if restart or wf.status is WorkflowStatus.COMPLETED:
            self.apply(ev.Restart())
        elif any(t.status in RETRYABLE for t in wf.tasks) or wf.status is WorkflowStatus.TIMED_OUT:
            self.apply(ev.Retry())

    @rule()
    def pause_and_resume(self) -> None:
        if self.wf.status is WorkflowStatus.RUNNING:
            self.apply(ev.Pause())
            self.apply(ev.Resume())

    @invariant()
    def no_duplicate_attempts(self) -> None:
        if not hasattr(self, "wfs"):
            return
        keys = [(t.reference_task_name, t.retry_count) for t in self.wf.tasks]
        assert len(keys) == len(set(keys)), keys

    @invariant()
    def terminal_or_waiting(self) -> None:
        if not hasattr(self, "wfs"):
            return
        active = [t for t in self.wf.tasks if t.status in ACTIVE]
        if self.wf.status in WORKFLOW_TERMINAL:
            assert not active
            return
        waiting_on_worker = any(t.task_type not in SYSTEM_TYPES for t in active)
        assert waiting_on_worker or self.decision.next_wake_ms > 0, [
            (t.reference_task_name, t.status.value) for t in self.wf.tasks
        ]


DeciderMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestDeciderMachine = DeciderMachine.TestCase
