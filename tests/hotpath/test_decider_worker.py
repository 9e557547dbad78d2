"""Worker tasks and the reliability rules: lifecycle, retries and back-off, optional and
permissive tasks, every timeout, domains and queue names, TaskDef defaults. Both twins."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from core import decisions as ev
from core.enums import TaskResultStatus, TaskStatus, WorkflowStatus
from core.errors import NotFound
from core.models import Workflow
from tests.hotpath.defs import T0, simple, status_of, tdef, wdef, workflow

R = TaskResultStatus


class Harness:
    """One workflow and the decider twin under test, with readable steps."""

    def __init__(
        self,
        decider: ModuleType,
        tasks: list[dict[str, Any]],
        *,
        task_defs: Any = (),
        input: dict[str, Any] | None = None,
        active: dict[str, frozenset[str]] | None = None,
        **wf_fields: Any,
    ) -> None:
        self.decider = decider
        def_fields = {
            k: wf_fields.pop(k)
            for k in list(wf_fields)
            if k in ("timeoutSeconds", "timeoutPolicy", "outputParameters")
        }
        self.wf: Workflow = workflow(wdef(tasks, **def_fields), input, **wf_fields)
        self.env = ev.DeciderEnv(
            task_defs={t.name: t for t in task_defs}, active_domains=active or {}
        )
        self.now = T0
        self.last = self.decide(ev.StartWorkflow())

    def decide(self, event: Any, at: int | None = None) -> ev.Decision:
        if at is not None:
            self.now = at
        self.last = self.decider.decide(self.wf, event, self.env, self.now)
        return self.last

    def row(self, ref: str, index: int = -1) -> Any:
        return [t for t in self.wf.tasks if t.reference_task_name == ref][index]

    def poll(self, ref: str, at: int | None = None) -> Any:
        t = self.row(ref)
        self.decide(ev.TaskPolled(task_id=t.task_id, worker_id="w1"), at)
        return t

    def update(
        self, ref: str, status: TaskResultStatus, at: int | None = None, **kw: Any
    ) -> ev.Decision:
        t = self.row(ref)
        return self.decide(ev.TaskUpdate(task_id=t.task_id, status=status, **kw), at)

    def statuses(self) -> list[tuple[str, str]]:
        return [(t.reference_task_name, t.status.value) for t in self.wf.tasks]


def test_start_schedules_first_task_with_mapped_input(decider: ModuleType) -> None:
    h = Harness(
        decider,
        [simple("a", inputParameters={"x": "${workflow.input.x}", "k": 1}), simple("b")],
        input={"x": 5},
        task_defs=[tdef("a")],
    )
    [t] = h.wf.tasks
    assert (t.status, t.task_type, t.reference_task_name, t.seq) == (
        TaskStatus.SCHEDULED,
        "a",
        "a",
        1,
    )
    assert t.input_data == {"x": 5, "k": 1}
    assert t.task_id == h.wf.workflow_id[:24] + "000000000001"
    assert h.last.actions == [ev.QueueTask(task_id=t.task_id, queue="a", priority=0, delay_ms=0)]
    assert h.last.added_task_ids == [t.task_id]
    assert h.last.changed


def test_poll_then_complete_schedules_next_and_completes(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a"), simple("b", inputParameters={"v": "${a.output.v}"})])
    a = h.poll("a", T0 + 10)
    assert (a.status, a.start_time, a.poll_count, a.worker_id) == (
        TaskStatus.IN_PROGRESS,
        T0 + 10,
        1,
        "w1",
    )
    h.update("a", R.COMPLETED, T0 + 20, output_data={"v": 7})
    assert a.status is TaskStatus.COMPLETED
    assert a.end_time == T0 + 20
    assert h.row("b").input_data == {"v": 7}
    h.poll("b")
    h.update("b", R.COMPLETED, output_data={"done": True})
    assert h.wf.status is WorkflowStatus.COMPLETED
    assert h.wf.output == {"done": True}  # no outputParameters: the last task's output
    assert h.last.next_wake_ms == 0


@pytest.mark.parametrize(
    ("logic", "extra", "delays"),
    [
        ("FIXED", {}, [10, 10, 10]),
        ("LINEAR_BACKOFF", {"backoffScaleFactor": 2}, [20, 40, 60]),
        ("EXPONENTIAL_BACKOFF", {}, [10, 20, 40]),
        ("EXPONENTIAL_BACKOFF", {"maxRetryDelaySeconds": 15}, [10, 15, 15]),
    ],
)
def test_retry_delays(
    decider: ModuleType, logic: str, extra: dict[str, Any], delays: list[int]
) -> None:
    td = tdef("a", retryCount=3, retryLogic=logic, retryDelaySeconds=10, **extra)
    h = Harness(decider, [simple("a")], task_defs=[td])
    seen = []
    for attempt in range(3):
        h.poll("a")
        d = h.update("a", R.FAILED, reason_for_incompletion=f"boom {attempt}")
        [queue] = [a for a in d.actions if isinstance(a, ev.QueueTask)]
        seen.append(queue.delay_ms // 1000)
        new = h.row("a")
        old = h.row("a", -2)
        assert old.retried
        assert old.status is TaskStatus.FAILED
        assert (new.retry_count, new.retried_task_id, new.status) == (
            attempt + 1,
            old.task_id,
            TaskStatus.SCHEDULED,
        )
        assert new.reason_for_incompletion == f"boom {attempt}"
        assert new.callback_after_seconds == queue.delay_ms // 1000
    assert seen == delays


def test_retries_exhausted_fail_the_workflow(decider: ModuleType) -> None:
    h = Harness(
        decider,
        [simple("a"), simple("b")],
        task_defs=[tdef("a", retryCount=1, retryDelaySeconds=0)],
    )
    h.poll("a")
    h.update("a", R.FAILED, reason_for_incompletion="first")
    h.poll("a")
    h.update("a", R.FAILED, reason_for_incompletion="second")
    last = h.row("a")
    assert h.wf.status is WorkflowStatus.FAILED
    assert (
        h.wf.reason_for_incompletion
        == f"Task {last.task_id} failed with status: FAILED and reason: 'second'"
    )
    assert h.wf.failed_reference_task_names == ["a"]
    assert h.wf.failed_task_names == ["a"]
    assert [r for r, _ in h.statuses()] == ["a", "a"]  # b never scheduled


@pytest.mark.parametrize(
    ("status", "wf_status"),
    [
        (R.FAILED_WITH_TERMINAL_ERROR, WorkflowStatus.FAILED),
        (R.CANCELED, WorkflowStatus.TERMINATED),
    ],
)
def test_non_retriable_statuses(
    decider: ModuleType, status: TaskResultStatus, wf_status: WorkflowStatus
) -> None:
    h = Harness(decider, [simple("a")], task_defs=[tdef("a", retryCount=5)])
    h.poll("a")
    h.update("a", status, reason_for_incompletion="no")
    assert len(h.wf.tasks) == 1
    assert h.wf.status is wf_status


def test_optional_task_failure_continues_with_errors(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a", optional=True, retryCount=0), simple("b")])
    h.poll("a")
    h.update("a", R.FAILED, reason_for_incompletion="meh")
    assert h.statuses() == [("a", "COMPLETED_WITH_ERRORS"), ("b", "SCHEDULED")]
    h.poll("b")
    h.update("b", R.COMPLETED)
    assert h.wf.status is WorkflowStatus.COMPLETED


def test_permissive_failure_fails_workflow_at_the_end(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a", permissive=True, retryCount=0), simple("b")])
    h.poll("a")
    h.update("a", R.FAILED, reason_for_incompletion="meh")
    assert h.statuses() == [("a", "FAILED"), ("b", "SCHEDULED")]
    assert h.wf.status is WorkflowStatus.RUNNING
    h.poll("b")
    h.update("b", R.COMPLETED)
    a = h.row("a")
    assert status_of(h.wf) is WorkflowStatus.FAILED
    assert (
        h.wf.reason_for_incompletion
        == f"Task {a.task_id} failed with status: FAILED and reason: 'meh'"
    )


def test_workflow_task_retry_count_overrides_task_def(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a", retryCount=0)], task_defs=[tdef("a", retryCount=5)])
    h.poll("a")
    h.update("a", R.FAILED)
    assert h.wf.status is WorkflowStatus.FAILED


def test_missing_task_def_uses_conductor_defaults(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a")])
    t = h.row("a")
    assert t.response_timeout_seconds == 3600
    h.poll("a")
    d = h.update("a", R.FAILED)
    assert [a.delay_ms for a in d.actions if isinstance(a, ev.QueueTask)] == [60_000]
    assert h.row("a").retry_count == 1


def test_in_progress_with_callback_requeues_as_scheduled(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a")])
    h.poll("a", T0 + 5)
    d = h.update("a", R.IN_PROGRESS, T0 + 6, callback_after_seconds=30, output_data={"pct": 50})
    t = h.row("a")
    assert (t.status, t.callback_after_seconds, t.output_data) == (
        TaskStatus.SCHEDULED,
        30,
        {"pct": 50},
    )
    assert d.actions == [ev.QueueTask(task_id=t.task_id, queue="a", priority=0, delay_ms=30_000)]
    h.poll("a", T0 + 40_000)
    assert t.poll_count == 2
    assert t.start_time == T0 + 5


def test_extend_lease_only_refreshes_update_time(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a")], task_defs=[tdef("a", responseTimeoutSeconds=60)])
    h.poll("a", T0 + 1)
    d = h.update("a", R.IN_PROGRESS, T0 + 50_000, extend_lease=True, output_data={"x": 1})
    t = h.row("a")
    assert (t.status, t.update_time, t.output_data) == (TaskStatus.IN_PROGRESS, T0 + 50_000, {})
    assert d.actions == []
    assert d.next_wake_ms == T0 + 110_000


def test_updates_to_terminal_tasks_are_ignored(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a"), simple("b")])
    h.poll("a")
    h.update("a", R.COMPLETED)
    d = h.decide(ev.TaskUpdate(task_id=h.row("a").task_id, status=R.FAILED))
    assert not d.changed
    assert h.row("a").status is TaskStatus.COMPLETED
    with pytest.raises(NotFound):
        h.decide(ev.TaskUpdate(task_id="nope", status=R.COMPLETED))


def test_start_delay_delays_the_first_poll(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a", startDelay=15)])
    t = h.row("a")
    assert (t.start_delay_in_seconds, t.callback_after_seconds) == (15, 15)
    assert h.last.actions[0].delay_ms == 15_000


def test_task_def_input_template_defaults(decider: ModuleType) -> None:
    td = tdef("a", inputTemplate={"region": "eu", "size": 3, "x": "default"})
    h = Harness(
        decider,
        [simple("a", inputParameters={"x": "${workflow.input.x}", "size": 9})],
        task_defs=[td],
        input={},
    )
    assert h.row("a").input_data == {"region": "eu", "size": 9, "x": "default"}


# --------------------------------------------------------------------------- timeouts


def test_response_timeout_times_out_and_retries(decider: ModuleType) -> None:
    h = Harness(
        decider,
        [simple("a")],
        task_defs=[tdef("a", responseTimeoutSeconds=30, retryDelaySeconds=0)],
    )
    t = h.poll("a", T0)
    assert h.last.next_wake_ms == T0 + 30_000
    h.decide(ev.Sweep(), T0 + 29_999)
    assert t.status is TaskStatus.IN_PROGRESS
    h.decide(ev.Sweep(), T0 + 30_000)
    assert status_of(t) is TaskStatus.TIMED_OUT
    assert t.reason_for_incompletion == (
        f"responseTimeout: 30 exceeded for the taskId: {t.task_id} with Task Definition: a"
    )
    assert h.row("a").retry_count == 1
    assert h.row("a").status is TaskStatus.SCHEDULED


@pytest.mark.parametrize(
    ("policy", "task_status", "wf_status", "rows"),
    [
        ("RETRY", TaskStatus.TIMED_OUT, WorkflowStatus.RUNNING, 2),
        ("TIME_OUT_WF", TaskStatus.TIMED_OUT, WorkflowStatus.TIMED_OUT, 1),
        ("ALERT_ONLY", TaskStatus.IN_PROGRESS, WorkflowStatus.RUNNING, 1),
    ],
)
def test_task_timeout_policies(
    decider: ModuleType, policy: str, task_status: TaskStatus, wf_status: WorkflowStatus, rows: int
) -> None:
    # responseTimeout > timeout only to isolate the per-attempt timeout here
    td = tdef(
        "a", timeoutSeconds=10, responseTimeoutSeconds=20, timeoutPolicy=policy, retryDelaySeconds=0
    )
    h = Harness(decider, [simple("a")], task_defs=[td])
    t = h.poll("a", T0)
    h.decide(ev.Sweep(), T0 + 10_000)
    assert t.status is task_status
    assert h.wf.status is wf_status
    assert len(h.wf.tasks) == rows
    if policy != "ALERT_ONLY":
        assert t.reason_for_incompletion == (
            "Task timed out after 10 seconds. Timeout configured as 10 seconds. "
            f"Timeout policy configured to {policy}"
        )
    if policy == "TIME_OUT_WF":
        assert isinstance(h.wf.reason_for_incompletion, str)
        assert h.wf.reason_for_incompletion.startswith(
            f"Task {t.task_id} failed with status: TIMED_OUT"
        )


def test_alert_only_still_honours_the_response_timeout(decider: ModuleType) -> None:
    td = tdef(
        "a", timeoutSeconds=100, responseTimeoutSeconds=20, timeoutPolicy="ALERT_ONLY", retryCount=0
    )
    h = Harness(decider, [simple("a")], task_defs=[td])
    t = h.poll("a", T0)
    assert h.last.next_wake_ms == T0 + 20_000  # the task timeout is not armed under ALERT_ONLY
    h.decide(ev.Sweep(), T0 + 20_000)
    assert t.status is TaskStatus.TIMED_OUT
    assert h.wf.status is WorkflowStatus.TIMED_OUT


def test_poll_timeout(decider: ModuleType) -> None:
    td = tdef("a", pollTimeoutSeconds=5, retryCount=0)
    h = Harness(decider, [simple("a")], task_defs=[td])
    assert h.last.next_wake_ms == T0 + 5_000
    d = h.decide(ev.Sweep(), T0 + 5_000)
    t = h.row("a")
    assert t.status is TaskStatus.TIMED_OUT
    assert ev.DequeueTask(task_id=t.task_id, queue="a") in d.actions
    assert h.wf.status is WorkflowStatus.TIMED_OUT


def test_total_timeout_stops_retries(decider: ModuleType) -> None:
    td = tdef(
        "a",
        totalTimeoutSeconds=60,
        timeoutSeconds=50,
        responseTimeoutSeconds=50,
        retryCount=10,
        retryDelaySeconds=0,
        timeoutPolicy="RETRY",
    )
    h = Harness(decider, [simple("a")], task_defs=[td])
    h.poll("a", T0)
    h.update("a", R.FAILED, T0 + 30_000)
    assert h.row("a").retry_count == 1
    h.poll("a", T0 + 30_000)
    h.update("a", R.FAILED, T0 + 61_000)  # the budget since the first attempt is spent
    assert len(h.wf.tasks) == 2
    assert h.wf.status is WorkflowStatus.FAILED


def test_workflow_timeout(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a")], timeoutSeconds=100, timeoutPolicy="TIME_OUT_WF")
    assert h.last.next_wake_ms == T0 + 100_000
    h.decide(ev.Sweep(), T0 + 100_000)
    assert h.wf.status is WorkflowStatus.TIMED_OUT
    assert h.wf.reason_for_incompletion == (
        "Workflow timed out after 100 seconds. Timeout configured as 100 seconds. "
        "Timeout policy configured to TIME_OUT_WF"
    )
    assert h.row("a").status is TaskStatus.CANCELED


def test_workflow_timeout_alert_only_keeps_running(decider: ModuleType) -> None:
    h = Harness(decider, [simple("a")], timeoutSeconds=100, timeoutPolicy="ALERT_ONLY")
    assert h.last.next_wake_ms == 0
    h.decide(ev.Sweep(), T0 + 500_000)
    assert h.wf.status is WorkflowStatus.RUNNING


# --------------------------------------------------------------------------- domains and queues


@pytest.mark.parametrize(
    ("ttd", "active", "domain", "queue"),
    [
        ({}, {}, None, "a"),
        ({"*": "mydomain"}, {}, "mydomain", "mydomain:a"),
        ({"*": "d1", "a": "d2"}, {}, "d2", "d2:a"),
        ({"a": "d1,d2,d3"}, {"a": frozenset({"d2"})}, "d2", "d2:a"),
        ({"a": "d1,d2,d3"}, {}, "d3", "d3:a"),
        ({"a": "d1,NO_DOMAIN"}, {}, None, "a"),
        ({"b": "d1"}, {}, None, "a"),
    ],
)
def test_task_to_domain(
    decider: ModuleType,
    ttd: dict[str, str],
    active: dict[str, frozenset[str]],
    domain: str | None,
    queue: str,
) -> None:
    h = Harness(decider, [simple("a")], task_to_domain=ttd, active=active)
    t = h.row("a")
    assert (t.domain or None) == domain
    assert h.last.actions[0].queue == queue


def test_queue_name_with_namespace_and_isolation_group(decider: ModuleType) -> None:
    td = tdef("a", isolationGroupId="iso", executionNameSpace="ns")
    h = Harness(decider, [simple("a")], task_defs=[td], task_to_domain={"*": "dom"})
    assert h.last.actions[0].queue == "dom:a@ns-iso"
    assert (h.row("a").isolation_group_id, h.row("a").execution_name_space) == ("iso", "ns")


def test_domains_do_not_apply_to_system_tasks(decider: ModuleType) -> None:
    h = Harness(
        decider,
        [{"name": "w", "taskReferenceName": "w", "type": "WAIT"}],
        task_to_domain={"*": "dom"},
    )
    assert not h.row("w").domain


def test_unknown_task_type_is_a_worker_task(decider: ModuleType) -> None:
    h = Harness(decider, [{"name": "custom_name", "taskReferenceName": "c", "type": "MY_TYPE"}])
    t = h.row("c")
    assert (t.task_type, t.task_def_name, t.status) == (
        "MY_TYPE",
        "custom_name",
        TaskStatus.SCHEDULED,
    )
    assert h.last.actions[0].queue == "MY_TYPE"
