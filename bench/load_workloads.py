"""Workloads of the load harness: definitions to register and what one run costs.

Rules: every SIMPLE task is of type LOAD_TASK (one worker type serves them all, so the
workers' long-polls are not split across types); a workload knows how many worker tasks
one workflow runs, which turns workflows/s into tasks/s; `final_ref` names the SIMPLE
task whose completion ends the workflow in the same commit (nothing runs after it), so
the workers can report completions (bench/load_worker.py); None where a system task
(a JOIN) ends it. Definitions are Conductor JSON
(camelCase dicts), registered over HTTP by bench/load.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LOAD_TASK = "podium_load_task"
PREFIX = "podium_load_"


@dataclass(frozen=True)
class Workload:
    """A named workload: its main workflow, helper definitions and cost per run."""

    name: str
    workflow: dict[str, Any]
    worker_tasks: int
    helpers: list[dict[str, Any]] = field(default_factory=list)
    input: dict[str, Any] = field(default_factory=dict)
    final_ref: str | None = None

    @property
    def workflow_name(self) -> str:
        return str(self.workflow["name"])


def simple(ref: str, **extra: Any) -> dict[str, Any]:
    return {"name": LOAD_TASK, "taskReferenceName": ref, "type": "SIMPLE", **extra}


def _wdef(name: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": PREFIX + name,
        "version": 1,
        "schemaVersion": 2,
        "ownerEmail": "load@podium.invalid",
        "timeoutSeconds": 0,
        "tasks": tasks,
    }


def sequential(n: int = 5) -> Workload:
    tasks = [
        simple(f"s{i}", inputParameters={"i": i, "prev": f"${{s{i - 1}.output.n}}" if i else 0})
        for i in range(n)
    ]
    return Workload(f"sequential-{n}", _wdef(f"sequential_{n}", tasks), n, final_ref=f"s{n - 1}")


def fork(width: int = 10) -> Workload:
    branches = [[simple(f"b{i}", inputParameters={"i": i})] for i in range(width)]
    join_on = [f"b{i}" for i in range(width)]
    tasks: list[dict[str, Any]] = [
        {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": branches},
        {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": join_on},
    ]
    return Workload(f"fork-{width}", _wdef(f"fork_{width}", tasks), width)


def mixed() -> Workload:
    """SWITCH, DO_WHILE x3, INLINE, SUB_WORKFLOW and SIMPLE: 6 worker tasks per run."""
    child = _wdef("mixed_child", [simple("c0")])
    tasks: list[dict[str, Any]] = [
        {
            "name": "route",
            "taskReferenceName": "route",
            "type": "SWITCH",
            "evaluatorType": "value-param",
            "expression": "kind",
            "inputParameters": {"kind": "${workflow.input.kind}"},
            "decisionCases": {"a": [simple("case_a")]},
            "defaultCase": [simple("case_default")],
        },
        {
            "name": "loop",
            "taskReferenceName": "loop",
            "type": "DO_WHILE",
            "loopCondition": "$.loop['iteration'] < 3",
            "loopOver": [simple("body", inputParameters={"i": "${loop.output.iteration}"})],
        },
        {
            "name": "calc",
            "taskReferenceName": "calc",
            "type": "INLINE",
            "inputParameters": {
                "evaluatorType": "javascript",
                "expression": "$.x * 2",
                "x": "${workflow.input.x}",
            },
        },
        {
            "name": "child",
            "taskReferenceName": "child",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {"name": child["name"], "version": 1},
        },
        simple("last", inputParameters={"doubled": "${calc.output.result}"}),
    ]
    return Workload(
        "mixed",
        _wdef("mixed", tasks),
        6,
        helpers=[child],
        input={"kind": "a", "x": 21},
        final_ref="last",
    )


def hold() -> Workload:
    """One WAIT task (no duration): the workflow waits until the harness completes it."""
    tasks = [{"name": "hold", "taskReferenceName": "hold", "type": "WAIT"}]
    return Workload("hold", _wdef("hold", tasks), 0)


WORKLOADS = {w.name: w for w in (sequential(5), fork(10), mixed())}


def task_defs() -> list[dict[str, Any]]:
    """The one worker task definition every workload uses."""
    return [
        {
            "name": LOAD_TASK,
            "retryCount": 3,
            "retryLogic": "FIXED",
            "retryDelaySeconds": 0,
            "timeoutSeconds": 300,
            "timeoutPolicy": "TIME_OUT_WF",
            "responseTimeoutSeconds": 60,
            "ownerEmail": "load@podium.invalid",
        }
    ]
