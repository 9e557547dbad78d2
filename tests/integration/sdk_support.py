"""Helpers for the SDK integration tests: waiting for workflows, polling by hand.

Rules: waits are bounded (a test fails with the workflow's state, never hangs) and poll
the server through the SDK itself; nothing here sleeps longer than 50 ms at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TERMINAL = {"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"}


def wait_for(
    sdk: Any, workflow_id: str, statuses: set[str] | None = None, timeout: float = 20.0
) -> Any:
    """The workflow (SDK model) once its status is in `statuses` (default: terminal)."""
    wanted = statuses or TERMINAL
    deadline = time.monotonic() + timeout
    workflow = sdk.workflows.get_workflow(workflow_id, include_tasks=True)
    while workflow.status not in wanted:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"workflow {workflow_id} is {workflow.status}, wanted {sorted(wanted)}; tasks: "
                + ", ".join(f"{t.reference_task_name}={t.status}" for t in workflow.tasks or [])
            )
        time.sleep(0.05)
        workflow = sdk.workflows.get_workflow(workflow_id, include_tasks=True)
    return workflow


def wait_for_task(
    sdk: Any, workflow_id: str, ref: str, status: str = "IN_PROGRESS", timeout: float = 20.0
) -> Any:
    """The workflow once its task `ref` has `status`."""
    deadline = time.monotonic() + timeout
    while True:
        workflow = sdk.workflows.get_workflow(workflow_id, include_tasks=True)
        for task in workflow.tasks or []:
            if task.reference_task_name == ref and task.status == status:
                return workflow
        if time.monotonic() > deadline:
            raise AssertionError(f"task {ref} of {workflow_id} never reached {status}")
        time.sleep(0.05)


def task_by_ref(workflow: Any, ref: str) -> Any:
    """The last task of `workflow` with reference name `ref`."""
    found = [t for t in workflow.tasks if t.reference_task_name == ref]
    assert found, f"no task {ref} in {[t.reference_task_name for t in workflow.tasks]}"
    return found[-1]


def drive(
    sdk: Any,
    workflow_ids: list[str],
    answers: dict[str, Callable[[Any], dict[str, Any]]],
    timeout: float = 30.0,
) -> list[Any]:
    """Work `workflow_ids` to the end with the SDK's TaskClient: batch-poll every task
    type in `answers` and complete each task with `answers[type](task)`.

    Returns:
        The final workflows, in order.
    """
    from conductor.client.http.models.task_result import TaskResult
    from conductor.client.http.models.task_result_status import TaskResultStatus

    deadline = time.monotonic() + timeout
    pending = set(workflow_ids)
    while pending:
        if time.monotonic() > deadline:
            states = [wait_for(sdk, w, TERMINAL | {"RUNNING", "PAUSED"}) for w in pending]
            raise AssertionError(
                "still running: "
                + "; ".join(
                    f"{w.workflow_id}: "
                    + ", ".join(f"{t.reference_task_name}={t.status}" for t in w.tasks)
                    for w in states
                )
            )
        worked = False
        for task_type, answer in answers.items():
            for task in sdk.tasks.batch_poll_tasks(task_type, "it-driver", 10, 10) or []:
                worked = True
                sdk.tasks.update_task(
                    TaskResult(
                        workflow_instance_id=task.workflow_instance_id,
                        task_id=task.task_id,
                        worker_id="it-driver",
                        status=TaskResultStatus.COMPLETED,
                        output_data=answer(task),
                    )
                )
        for workflow_id in list(pending):
            status = sdk.workflows.get_workflow_status(workflow_id).status
            if status in TERMINAL:
                pending.discard(workflow_id)
        if not worked:
            time.sleep(0.05)
    return [sdk.workflows.get_workflow(w, include_tasks=True) for w in workflow_ids]
