"""server.api.wire: what leaves the server (no internals, no top-level nulls, no
`subWorkflowParam.idempotencyStrategy` at any depth); server.samples_loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from core import codec
from core.enums import TaskStatus
from core.errors import DefinitionError
from core.models import Task, Workflow, WorkflowDef
from server.api import wire
from server.samples_loader import read_samples, register_samples
from tests.server.engine_helpers import running_engine


def _sub(ref: str, **param: object) -> dict[str, object]:
    return {
        "name": ref,
        "taskReferenceName": ref,
        "type": "SUB_WORKFLOW",
        "subWorkflowParam": {"name": "child", "idempotencyStrategy": "FAIL", **param},
    }


NESTED = {
    "name": "nested",
    "tasks": [
        _sub("top"),
        {
            "name": "sw",
            "taskReferenceName": "sw",
            "type": "SWITCH",
            "evaluatorType": "value-param",
            "expression": "x",
            "decisionCases": {"a": [_sub("in_case")]},
            "defaultCase": [_sub("in_default")],
        },
        {
            "name": "fork",
            "taskReferenceName": "fork",
            "type": "FORK_JOIN",
            "forkTasks": [[_sub("in_fork")]],
        },
        {
            "name": "loop",
            "taskReferenceName": "loop",
            "type": "DO_WHILE",
            "loopCondition": "false",
            "loopOver": [
                _sub(
                    "in_loop",
                    workflowDefinition={"name": "inline", "tasks": [_sub("in_inline")]},
                )
            ],
        },
    ],
}


def test_idempotency_strategy_removed_at_every_depth() -> None:
    definition = codec.convert(NESTED, WorkflowDef)
    text = json.dumps(wire.def_builtins(definition))
    assert "idempotencyStrategy" not in text
    assert text.count('"subWorkflowParam"') == 6  # the params themselves are kept
    # The model (what the engine uses) still has it.
    assert definition.tasks[0].sub_workflow_param.idempotency_strategy == "FAIL"  # type: ignore[union-attr]


def test_workflow_without_internals_and_top_level_nulls() -> None:
    definition = codec.convert(NESTED, WorkflowDef)
    task = Task(
        task_type="SUB_WORKFLOW",
        status=TaskStatus.SCHEDULED,
        reference_task_name="top",
        task_id="t1",
        workflow_instance_id="w1",
        workflow_task=definition.tasks[0],
        input_data={"kept": None},
        correlation_id=None,
        timer_at=5,
        loop_scope="x#1",
    )
    workflow = Workflow(
        workflow_id="w1",
        workflow_name="nested",
        workflow_version=1,
        tasks=[task],
        workflow_definition=definition,
        correlation_id=None,
        restart_generation=3,
        scan_from=1,
    )
    data = wire.workflow_builtins(workflow)
    assert "restartGeneration" not in data
    assert "scanFrom" not in data
    assert "correlationId" not in data
    [out] = data["tasks"]
    assert "timerAt" not in out
    assert "loopScope" not in out
    assert "correlationId" not in out
    assert out["inputData"] == {"kept": None}  # nulls inside data are data
    assert "idempotencyStrategy" not in json.dumps(data)
    assert wire.task_builtins(task) == out


def test_task_json_equals_the_dict_route() -> None:
    definition = codec.convert(NESTED, WorkflowDef)
    node = definition.tasks[0]
    tasks = [
        Task(
            task_type="SUB_WORKFLOW",
            status=TaskStatus.SCHEDULED,
            reference_task_name="top",
            task_id="t1",
            workflow_instance_id="w1",
            workflow_task=node,
            input_data={"kept": None, "n": [1, {"a": None}]},
            correlation_id=None,
            worker_id="w",
            timer_at=5,
            loop_scope="x#1",
            script_pending=True,
        ),
        Task(
            task_type="SIMPLE",
            status=TaskStatus.IN_PROGRESS,
            reference_task_name="plain",
            task_id="t2",
            workflow_instance_id="w1",
            workflow_task=None,
            domain=None,
            reason_for_incompletion="why",
            execution_metadata={"k": None},
        ),
    ]
    for task in tasks:
        built = wire.task_builtins(task)
        assert json.loads(wire.task_json(task)) == built
        assert json.loads(wire.task_response(task).body) == built
        assert "timerAt" not in built
        assert "correlationId" not in built
    assert json.loads(wire.tasks_response(tasks).body) == [wire.task_builtins(t) for t in tasks]
    # Encoding twice reuses the node's JSON and never changes the task.
    assert wire.task_json(tasks[0]) == wire.task_json(tasks[0])
    assert tasks[0].timer_at == 5
    assert tasks[0].workflow_task is node


def _write(folder: Path, name: str, data: object) -> None:
    (folder / name).write_text(json.dumps(data))


def test_read_samples_sorts_kinds(tmp_path: Path) -> None:
    assert read_samples(tmp_path) == ([], [])
    _write(tmp_path, "a.json", [{"name": "td_one"}, {"name": "wf_one", "tasks": []}])
    _write(
        tmp_path, "b.json", {"name": "wf_two", "tasks": [{"name": "x", "taskReferenceName": "x"}]}
    )
    _write(tmp_path, "notes.txt", "ignored")
    task_defs, workflow_defs = read_samples(tmp_path)
    assert [t.name for t in task_defs] == ["td_one"]
    assert [w.name for w in workflow_defs] == ["wf_one", "wf_two"]


def test_bad_sample_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DefinitionError, match=r"sample broken\.json"):
        read_samples(tmp_path)


async def test_register_samples_validates_then_writes(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    _write(tmp_path, "td.json", {"name": "sample_task", "retryCount": 1})
    _write(
        tmp_path,
        "wf.json",
        {"name": "sample_wf", "tasks": [{"name": "sample_task", "taskReferenceName": "s"}]},
    )
    async with running_engine() as engine:
        assert await register_samples(engine, tmp_path) == 2
        assert await engine.store.get_task_def("sample_task") is not None
        assert await engine.metadata.workflow_def("sample_wf", 1) is not None

    _write(tmp_path, "zz_bad.json", {"name": "bad_wf", "tasks": []})
    async with running_engine() as engine:
        with pytest.raises(DefinitionError):
            await register_samples(engine, tmp_path)
        # Validation failed before any write: not even the valid task def is there.
        assert await engine.store.get_task_def("sample_task") is None
