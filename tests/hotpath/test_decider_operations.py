"""API operations: pause, resume, terminate, restart, retry, rerun, skip task, reset
callbacks, decide now; misuse raises with Podium's status codes. Both twins."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from core import decisions as ev
from core.enums import TaskResultStatus, TaskStatus, WorkflowStatus
from core.errors import BadRequest, IllegalTransition, NotFound
from core.models import RerunWorkflowRequest
from tests.hotpath.defs import T0, simple, status_of, tdef, wdef
from tests.hotpath.driver import Driver

R = TaskResultStatus


def driver(decider: ModuleType, n: int = 3, **def_fields: object) -> tuple[Driver, str]:
    defn = wdef([simple(f"t{i}", retryCount=0) for i in range(n)], name="ops", **def_fields)
    d = Driver(decider, workflow_defs=[defn], start_ms=T0)
    return d, d.start("ops", {"x": 1})


def fail_first(d: Driver, wid: str) -> None:
    d.complete(d.poll("t0"), status=R.FAILED, reason="boom")
    assert d.workflows[wid].status is WorkflowStatus.FAILED


def test_pause_holds_scheduling_and_resume_continues(decider: ModuleType) -> None:
    d, wid = driver(decider)
    t0 = d.poll("t0")
    assert t0 is not None
    d.decide(wid, ev.Pause())
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.PAUSED
    d.complete(t0)  # in-flight work can still report
    assert t0.status is TaskStatus.COMPLETED
    assert d.refs(wid) == ["t0"]
    d.decide(wid, ev.Pause())  # pausing again is a no-op
    d.now += 5
    d.decide(wid, ev.Resume())
    assert status_of(wf) is WorkflowStatus.RUNNING
    assert wf.last_retried_time == d.now
    assert d.refs(wid) == ["t0", "t1"]


@pytest.mark.parametrize("status", [WorkflowStatus.RUNNING, WorkflowStatus.COMPLETED])
def test_resume_requires_paused(decider: ModuleType, status: WorkflowStatus) -> None:
    d, wid = driver(decider, 1)
    if status is WorkflowStatus.COMPLETED:
        d.run()
    with pytest.raises(IllegalTransition, match="only a paused workflow can be resumed") as info:
        d.decide(wid, ev.Resume())
    assert info.value.http_status == 409


def test_pause_of_ended_workflow_is_a_conflict(decider: ModuleType) -> None:
    d, wid = driver(decider, 1)
    d.run()
    with pytest.raises(IllegalTransition):
        d.decide(wid, ev.Pause())


def test_terminate(decider: ModuleType) -> None:
    d, wid = driver(decider)
    decision = d.decide(wid, ev.Terminate(reason="by hand"))
    wf = d.workflows[wid]
    assert (wf.status, wf.reason_for_incompletion) == (WorkflowStatus.TERMINATED, "by hand")
    assert d.task(wid, "t0").status is TaskStatus.CANCELED
    assert any(isinstance(a, ev.DequeueTask) for a in decision.actions)
    assert not d.failure_workflows  # an API terminate runs no failure workflow
    assert not d.decide(wid, ev.Terminate()).changed  # already terminated: no-op


def test_terminate_completed_is_a_conflict(decider: ModuleType) -> None:
    d, wid = driver(decider, 1)
    d.run()
    with pytest.raises(IllegalTransition, match="Cannot terminate a COMPLETED workflow"):
        d.decide(wid, ev.Terminate())


def test_terminate_can_start_the_failure_workflow_when_asked(decider: ModuleType) -> None:
    d, wid = driver(decider, failureWorkflow="cleanup")
    d.decide(wid, ev.Terminate(reason="r", trigger_failure_workflow=True))
    [action] = d.failure_workflows
    assert action.name == "cleanup"
    assert action.input["failureStatus"] == "TERMINATED"


def test_restart_starts_over_with_fresh_ids(decider: ModuleType) -> None:
    d, wid = driver(decider, 2)
    fail_first(d, wid)
    old_ids = [t.task_id for t in d.workflows[wid].tasks]
    d.now += 100
    decision = d.decide(wid, ev.Restart())
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.RUNNING
    assert wf.create_time == d.now
    assert decision.removed_task_ids == old_ids
    assert d.refs(wid) == ["t0"]
    assert wf.tasks[0].task_id not in old_ids
    d.run()
    assert status_of(wf) is WorkflowStatus.COMPLETED


def test_restart_running_is_a_conflict_and_non_restartable_completed_is_not_found(
    decider: ModuleType,
) -> None:
    d, wid = driver(decider, 1, restartable=False)
    with pytest.raises(IllegalTransition):
        d.decide(wid, ev.Restart())
    d.run()
    with pytest.raises(NotFound):
        d.decide(wid, ev.Restart())


def test_retry_reschedules_failed_task(decider: ModuleType) -> None:
    d, wid = driver(decider, 2)
    fail_first(d, wid)
    failed = d.task(wid, "t0")
    d.now += 10
    d.decide(wid, ev.Retry())
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.RUNNING
    assert not wf.reason_for_incompletion
    assert failed.retried
    new = d.task(wid, "t0")
    assert (new.retry_count, new.retried_task_id, new.status) == (
        1,
        failed.task_id,
        TaskStatus.SCHEDULED,
    )
    d.run()
    assert status_of(wf) is WorkflowStatus.COMPLETED
    assert d.refs(wid) == ["t0", "t0", "t1"]


def test_retry_needs_a_terminal_workflow_with_failures(decider: ModuleType) -> None:
    d, wid = driver(decider, 1)
    with pytest.raises(IllegalTransition):
        d.decide(wid, ev.Retry())
    d.run()
    with pytest.raises(IllegalTransition, match="no failed task to retry"):
        d.decide(wid, ev.Retry())


def test_retry_resets_failed_join_and_reruns_canceled_branches(decider: ModuleType) -> None:
    tasks: list[dict[str, Any]] = [
        {
            "name": "f",
            "taskReferenceName": "f",
            "type": "FORK_JOIN",
            "forkTasks": [[simple("a", retryCount=0)], [simple("b")]],
        },
        {"name": "j", "taskReferenceName": "j", "type": "JOIN", "joinOn": ["a", "b"]},
    ]
    d = Driver(decider, workflow_defs=[wdef(tasks, name="fj")])
    wid = d.start("fj", {})
    d.complete(d.poll("a"), status=R.FAILED)
    assert d.task(wid, "b").status is TaskStatus.CANCELED
    d.decide(wid, ev.Retry())
    assert d.task(wid, "j").status is TaskStatus.IN_PROGRESS
    assert [t.status for t in d.workflows[wid].tasks if t.reference_task_name in ("a", "b")][
        -2:
    ] == [TaskStatus.SCHEDULED, TaskStatus.SCHEDULED]
    d.run()
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED


def test_rerun_whole_workflow_with_new_input(decider: ModuleType) -> None:
    d, wid = driver(decider, 1)
    d.run()
    d.decide(
        wid, ev.Rerun(request=RerunWorkflowRequest(workflow_input={"x": 2}, correlation_id="c2"))
    )
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.RUNNING
    assert wf.input == {"x": 2}
    assert wf.correlation_id == "c2"
    assert len(wf.tasks) == 1
    assert wf.tasks[0].status is TaskStatus.SCHEDULED


def test_rerun_from_a_task(decider: ModuleType) -> None:
    d, wid = driver(decider, 3)
    d.run()
    t1 = d.task(wid, "t1")
    t2_id = d.task(wid, "t2").task_id
    decision = d.decide(
        wid,
        ev.Rerun(
            request=RerunWorkflowRequest(re_run_from_task_id=t1.task_id, task_input={"again": True})
        ),
    )
    assert decision.removed_task_ids == [t2_id]
    assert d.refs(wid) == ["t0", "t1"]
    assert (t1.status, t1.input_data, t1.output_data) == (TaskStatus.SCHEDULED, {"again": True}, {})
    d.run()
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    assert d.refs(wid) == ["t0", "t1", "t2"]
    assert d.task(wid, "t2").task_id != t2_id  # a new generation of ids after a rerun


def test_rerun_unknown_task_is_bad_request(decider: ModuleType) -> None:
    d, wid = driver(decider, 1)
    d.run()
    with pytest.raises(BadRequest, match="Task nope not found"):
        d.decide(wid, ev.Rerun(request=RerunWorkflowRequest(re_run_from_task_id="nope")))


def test_skip_task(decider: ModuleType) -> None:
    d, wid = driver(decider, 3)
    d.decide(wid, ev.SkipTask(task_reference_name="t1", task_output={"skipped": True}))
    assert d.task(wid, "t1").status is TaskStatus.SKIPPED
    d.run()
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
    assert [(r, s) for r, s in d.statuses(wid)] == [
        ("t0", "COMPLETED"),
        ("t1", "SKIPPED"),
        ("t2", "COMPLETED"),
    ]
    assert d.task(wid, "t1").output_data == {"skipped": True}


def test_skip_task_misuse(decider: ModuleType) -> None:
    d, wid = driver(decider, 2)
    with pytest.raises(NotFound):
        d.decide(wid, ev.SkipTask(task_reference_name="nope"))
    with pytest.raises(IllegalTransition, match="already scheduled"):
        d.decide(wid, ev.SkipTask(task_reference_name="t0"))


def test_reset_callbacks_makes_delayed_tasks_pollable(decider: ModuleType) -> None:
    d, wid = driver(decider, 1)
    d.complete(d.poll("t0"), status=R.IN_PROGRESS, callback_after_seconds=600)
    assert d.poll("t0") is None  # not visible for ten minutes
    decision = d.decide(wid, ev.ResetCallbacks())
    assert [a.delay_ms for a in decision.actions if isinstance(a, ev.QueueTask)] == [0]
    assert d.poll("t0") is not None


def test_decide_now_and_sweep_on_idle_workflow_change_nothing_visible(decider: ModuleType) -> None:
    d, wid = driver(decider, 1)
    before = [(t.task_id, t.status) for t in d.workflows[wid].tasks]
    for event in (ev.DecideNow(), ev.Sweep()):
        decision = d.decide(wid, event)
        assert decision.actions == []
    assert [(t.task_id, t.status) for t in d.workflows[wid].tasks] == before


def test_start_is_idempotent(decider: ModuleType) -> None:
    d, wid = driver(decider, 1)
    decision = d.decide(wid, ev.StartWorkflow())
    assert not decision.changed
    assert len(d.workflows[wid].tasks) == 1


def test_workflow_input_template_and_variables(decider: ModuleType) -> None:
    defn = wdef(
        [
            simple(
                "a",
                inputParameters={"r": "${workflow.input.region}", "v": "${workflow.variables.k}"},
            )
        ],
        name="tpl",
        inputTemplate={"region": "eu", "size": 1},
        variables={"k": "v0"},
    )
    d = Driver(decider, workflow_defs=[defn], task_defs=[tdef("a")])
    wid = d.start("tpl", {"size": 5})
    assert d.workflows[wid].input == {"size": 5, "region": "eu"}
    assert d.task(wid, "a").input_data == {"r": "eu", "v": "v0"}


def test_retry_inside_a_loop_resumes_the_iteration(decider: ModuleType) -> None:
    body = [simple("b", retryCount=0), simple("c")]
    tasks = [
        {
            "name": "lp",
            "taskReferenceName": "lp",
            "type": "DO_WHILE",
            "loopCondition": "",
            "items": "${workflow.input.xs}",
            "loopOver": body,
        }
    ]
    d = Driver(decider, workflow_defs=[wdef(tasks, name="loop")])
    wid = d.start("loop", {"xs": [1, 2]})
    d.complete(d.poll("b"))
    d.complete(d.poll("c"))
    d.complete(d.poll("b"), status=R.FAILED, reason="iteration 2 broke")
    wf = d.workflows[wid]
    assert wf.status is WorkflowStatus.FAILED
    assert d.task(wid, "lp").status is TaskStatus.CANCELED
    d.decide(wid, ev.Retry())
    assert d.task(wid, "lp").status is TaskStatus.IN_PROGRESS
    assert d.task(wid, "b__2").retry_count == 1
    d.run()
    assert status_of(wf) is WorkflowStatus.COMPLETED
    assert d.refs(wid) == ["lp", "b__1", "c__1", "b__2", "b__2", "c__2"]
    assert d.task(wid, "lp").output_data["iteration"] == 2


def test_retried_sub_workflow_task_starts_a_new_child(decider: ModuleType) -> None:
    child = wdef([simple("c", retryCount=0)], name="child")
    tasks = [
        {
            "name": "s",
            "taskReferenceName": "s",
            "type": "SUB_WORKFLOW",
            "subWorkflowParam": {"name": "child"},
        }
    ]
    d = Driver(
        decider,
        workflow_defs=[wdef(tasks, name="parent"), child],
        task_defs=[tdef("s", retryCount=1, retryDelaySeconds=0)],
    )
    wid = d.start("parent", {})
    first_child = d.task(wid, "s").sub_workflow_id
    d.complete(d.poll("c"), status=R.FAILED_WITH_TERMINAL_ERROR)
    second = d.task(wid, "s")
    assert second.retry_count == 1
    assert second.sub_workflow_id != first_child
    d.complete(d.poll("c"))
    assert d.workflows[wid].status is WorkflowStatus.COMPLETED
