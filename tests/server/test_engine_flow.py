"""Engine end to end on the memory store: start, poll, update, retries, system task
chains, sub-workflows, operator commands."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from core.enums import TaskResultStatus, TaskStatus, WorkflowStatus
from core.errors import BadRequest, Conflict, DefinitionError, NotFound
from core.models import StartWorkflowRequest, TaskExecLogEntry, TaskResult
from core.store import DECIDER_QUEUE
from server.engine import EngineConfig
from tests.server.engine_helpers import (
    register,
    result,
    running_engine,
    simple,
    start,
    task_def,
    wf_def,
)

DONE = TaskResultStatus.COMPLETED


async def test_start_poll_update_completes(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            wf_def(
                "two_steps",
                [
                    simple("a", "task_a", inputParameters={"x": "${workflow.input.x}"}),
                    simple("b", "task_b", inputParameters={"y": "${a.output.y}"}),
                ],
                outputParameters={"final": "${b.output.z}"},
            ),
        )
        wf_id = await start(engine, "two_steps", {"x": 1})
        assert await engine.queue_size("task_a") == 1

        [task_a] = await engine.poll("task_a", worker_id="w1")
        assert task_a.status is TaskStatus.IN_PROGRESS
        assert task_a.input_data == {"x": 1}
        assert task_a.worker_id == "w1"
        assert await engine.queue_size("task_a") == 0  # acked with the commit

        assert await engine.update_task(result(task_a, output_data={"y": 2})) == task_a.task_id
        [task_b] = await engine.poll("task_b")
        assert task_b.input_data == {"y": 2}
        await engine.update_task(result(task_b, output_data={"z": 3}))

        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert workflow.output == {"final": 3}
        assert [t.status for t in workflow.tasks] == [TaskStatus.COMPLETED] * 2
        # A finished workflow leaves no timer behind.
        assert not await engine.store.contains(DECIDER_QUEUE, wf_id)
        assert (await engine.get_workflow(wf_id, include_tasks=False)).tasks == []


async def test_start_errors(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        with pytest.raises(NotFound, match=r"No such workflow defined\. name=nope"):
            await start(engine, "nope")
        await register(engine, wf_def("w", [simple("a")]))
        with pytest.raises(BadRequest, match="input"):
            await engine.start_workflow(StartWorkflowRequest(name="w", input=None))
        with pytest.raises(BadRequest, match="priority"):
            await engine.start_workflow(StartWorkflowRequest(name="w", priority=100))
        with pytest.raises(NotFound):
            await engine.get_workflow("missing")


async def test_input_template_and_inline_definition(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        inline = wf_def("inline_wf", [simple("a")], inputTemplate={"k": "default", "j": 1})
        wf_id = await engine.start_workflow(
            StartWorkflowRequest(name="inline_wf", input={"j": 2}, workflow_def=inline)
        )
        workflow = await engine.get_workflow(wf_id)
        assert workflow.input == {"j": 2, "k": "default"}
        broken = wf_def("broken", [simple("a"), simple("a")])  # duplicate reference name
        with pytest.raises(DefinitionError, match=r"workflowDef\.tasks\[1\]"):
            await engine.start_workflow(
                StartWorkflowRequest(name="broken", input={}, workflow_def=broken)
            )
        assert await engine.running_ids("broken", None) == []  # nothing half-written


async def test_update_to_terminal_task_is_ignored(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("w", [simple("a"), simple("b")]))
        wf_id = await start(engine, "w")
        [task] = await engine.poll("a")
        await engine.update_task(result(task, output_data={"first": True}))
        # A second (late) update of the same task changes nothing but still answers.
        assert await engine.update_task(result(task, "FAILED")) == task.task_id
        workflow = await engine.get_workflow(wf_id)
        assert workflow.tasks[0].status is TaskStatus.COMPLETED
        assert workflow.tasks[0].output_data == {"first": True}
        with pytest.raises(NotFound, match="no-such-task"):
            await engine.update_task(
                TaskResult(
                    workflow_instance_id=wf_id,
                    task_id="no-such-task",
                    status=DONE,
                    logs=[TaskExecLogEntry(log="lost")],
                )
            )
        assert await engine.get_task_logs("no-such-task") == []  # a 404 writes nothing
        with pytest.raises(BadRequest, match="taskId"):
            await engine.update_task(
                TaskResult(workflow_instance_id=wf_id, task_id="", status=DONE)
            )
        with pytest.raises(BadRequest, match="status"):
            await engine.update_task(TaskResult(workflow_instance_id=wf_id, task_id=task.task_id))


async def test_retry_after_delay_driven_by_sweeper(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("flaky", retryCount=2, retryDelaySeconds=10),
            wf_def("retrying", [simple("f", "flaky")]),
        )
        wf_id = await start(engine, "retrying")
        [first] = await engine.poll("flaky")
        failed_at = trio.current_time()
        await engine.update_task(result(first, "FAILED", reasonForIncompletion="boom"))

        workflow = await engine.get_workflow(wf_id)
        assert [t.status for t in workflow.tasks] == [TaskStatus.FAILED, TaskStatus.SCHEDULED]
        assert workflow.tasks[1].retry_count == 1
        # Not pollable before its delay...
        assert await engine.poll("flaky") == []
        # ...and handed out once the delay is over (virtual time jumps ahead).
        while not (second := await engine.poll("flaky", timeout_ms=5000)):
            pass
        assert trio.current_time() - failed_at >= 10
        assert second[0].retry_count == 1
        await engine.update_task(result(second[0]))
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.COMPLETED


async def test_response_timeout_retried_by_sweeper(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(
            engine,
            task_def("slow", retryCount=1, retryDelaySeconds=0, responseTimeoutSeconds=5),
            wf_def("timeouts", [simple("s", "slow")]),
        )
        wf_id = await start(engine, "timeouts")
        [task] = await engine.poll("slow")
        # The worker never answers: the sweeper wakes exactly at the response timeout.
        await trio.sleep(7)
        workflow = await engine.get_workflow(wf_id)
        assert workflow.tasks[0].status is TaskStatus.TIMED_OUT
        assert workflow.tasks[1].status is TaskStatus.SCHEDULED
        assert engine.sweeper.swept >= 1
        [again] = await engine.poll("slow")
        assert again.task_id != task.task_id


@pytest.mark.parametrize("in_thread", [False, True], ids=["inline", "thread"])
async def test_system_task_chain_completes_in_one_call(
    autojump_clock: trio.abc.Clock, in_thread: bool
) -> None:
    async with running_engine(config=EngineConfig(scripts_in_thread=in_thread)) as engine:
        tasks: list[dict[str, Any]] = [
            {
                "name": "inline",
                "taskReferenceName": "calc",
                "type": "INLINE",
                "inputParameters": {
                    "evaluatorType": "javascript",
                    "expression": "$.n * 2",
                    "n": "${workflow.input.n}",
                },
            },
            {
                "name": "setvar",
                "taskReferenceName": "setvar",
                "type": "SET_VARIABLE",
                "inputParameters": {"doubled": "${calc.output.result}"},
            },
            {
                "name": "jq",
                "taskReferenceName": "jq",
                "type": "JSON_JQ_TRANSFORM",
                "inputParameters": {
                    "v": "${workflow.variables.doubled}",
                    "queryExpression": "{big: (.v > 5)}",
                },
            },
            {
                "name": "switch",
                "taskReferenceName": "sw",
                "type": "SWITCH",
                "evaluatorType": "value-param",
                "expression": "big",
                "inputParameters": {"big": "${jq.output.result.big}"},
                "decisionCases": {
                    "true": [
                        {
                            "name": "set_big",
                            "taskReferenceName": "set_big",
                            "type": "SET_VARIABLE",
                            "inputParameters": {"size": "big"},
                        }
                    ]
                },
                "defaultCase": [
                    {
                        "name": "set_small",
                        "taskReferenceName": "set_small",
                        "type": "SET_VARIABLE",
                        "inputParameters": {"size": "small"},
                    }
                ],
            },
        ]
        await register(
            engine, wf_def("chain", tasks, outputParameters={"size": "${workflow.variables.size}"})
        )
        wf_id = await start(engine, "chain", {"n": 4})
        # start_workflow returned: every system task already ran, in one commit.
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert workflow.variables["doubled"] == 8
        assert workflow.output == {"size": "big"}
        assert [t.reference_task_name for t in workflow.tasks] == [
            "calc",
            "setvar",
            "jq",
            "sw",
            "set_big",
        ]
        record = await engine.store.load(wf_id)
        assert record is not None
        assert record.version == 1


async def test_sub_workflow_round_trip(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        child = wf_def(
            "child_wf",
            [simple("c", "child_task", inputParameters={"v": "${workflow.input.v}"})],
            outputParameters={"doubled": "${c.output.doubled}"},
        )
        parent = wf_def(
            "parent_wf",
            [
                {
                    "name": "child",
                    "taskReferenceName": "sub",
                    "type": "SUB_WORKFLOW",
                    "subWorkflowParam": {"name": "child_wf", "version": 1},
                    "inputParameters": {"v": "${workflow.input.v}"},
                },
                simple("after", "after_task", inputParameters={"d": "${sub.output.doubled}"}),
            ],
        )
        await register(engine, child, parent)
        parent_id = await start(engine, "parent_wf", {"v": 21}, correlation_id="corr-1")
        workflow = await engine.get_workflow(parent_id)
        sub_task = workflow.tasks[0]
        assert sub_task.status is TaskStatus.IN_PROGRESS
        child_id = sub_task.sub_workflow_id
        assert isinstance(child_id, str)
        child_wf = await engine.get_workflow(child_id)
        assert child_wf.parent_workflow_id == parent_id
        assert child_wf.correlation_id == "corr-1"

        [task] = await engine.poll("child_task")
        assert task.input_data == {"v": 21}
        await engine.update_task(result(task, output_data={"doubled": 42}))
        assert (await engine.get_workflow(child_id)).status is WorkflowStatus.COMPLETED
        workflow = await engine.get_workflow(parent_id)
        assert workflow.tasks[0].status is TaskStatus.COMPLETED
        assert workflow.tasks[0].output_data["doubled"] == 42
        [after] = await engine.poll("after_task")
        assert after.input_data == {"d": 42}

        # Terminating the parent terminates its running child too.
        other_parent = await start(engine, "parent_wf", {"v": 1})
        other_child = (await engine.get_workflow(other_parent)).tasks[0].sub_workflow_id
        assert isinstance(other_child, str)
        await engine.terminate(other_parent, "stop")
        assert (await engine.get_workflow(other_child)).status is WorkflowStatus.TERMINATED


async def test_operator_commands(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("ops", [simple("a"), simple("b")]))
        wf_id = await start(engine, "ops")
        await engine.pause(wf_id)
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.PAUSED
        assert not await engine.store.contains(DECIDER_QUEUE, wf_id)
        await engine.pause(wf_id)  # no-op
        [task] = await engine.poll("a")  # in-flight work continues while paused
        await engine.update_task(result(task))
        assert await engine.poll("b") == []  # nothing new is scheduled
        await engine.resume(wf_id)
        [task_b] = await engine.poll("b")
        await engine.terminate(wf_id, "enough")
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.TERMINATED
        assert workflow.tasks[-1].status is TaskStatus.CANCELED
        await engine.terminate(wf_id)  # already terminated: no-op
        with pytest.raises(Exception, match="PAUSED"):
            await engine.resume(wf_id)

        done = await start(engine, "ops")
        for ref in ("a", "b"):
            [t] = await engine.poll(ref)
            await engine.update_task(result(t))
        with pytest.raises(Conflict, match=r"Cannot terminate a COMPLETED workflow\."):
            await engine.terminate(done)

        await engine.restart(wf_id)
        restarted = await engine.get_workflow(wf_id)
        assert restarted.status is WorkflowStatus.RUNNING
        assert [t.reference_task_name for t in restarted.tasks] == ["a"]
        assert task_b.task_id not in {t.task_id for t in restarted.tasks}

        await engine.remove(wf_id)
        with pytest.raises(NotFound):
            await engine.get_workflow(wf_id)
        assert await engine.queue_size("a") == 0


async def test_wait_task_ends_exactly_on_time(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        wait = {
            "name": "pause",
            "taskReferenceName": "pause",
            "type": "WAIT",
            "inputParameters": {"duration": "10 seconds"},
        }
        await register(engine, wf_def("waits", [wait]))
        wf_id = await start(engine, "waits")
        await trio.sleep(30)
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        # The sweeper slept until the WAIT's deadline (virtual time), not a polling period.
        assert workflow.tasks[0].end_time - workflow.tasks[0].start_time == 10_000


async def test_start_workflow_task_and_failure_workflow(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        starter = {
            "name": "starter",
            "taskReferenceName": "starter",
            "type": "START_WORKFLOW",
            "inputParameters": {
                "startWorkflow": {"name": "target", "input": {"from": "${workflow.workflowId}"}}
            },
        }
        await register(
            engine,
            wf_def("target", [simple("t", "target_task")]),
            wf_def("launcher", [starter]),
            wf_def("on_failure", [simple("h", "handler_task")]),
            task_def("breaks", retryCount=0),
            wf_def("failing", [simple("b", "breaks")], failureWorkflow="on_failure"),
        )
        launcher = await start(engine, "launcher", correlation_id="corr")
        await trio.testing.wait_all_tasks_blocked()  # the START_WORKFLOW runs in background
        workflow = await engine.get_workflow(launcher)
        assert workflow.status is WorkflowStatus.COMPLETED
        target_id = workflow.tasks[0].output_data["workflowId"]
        target = await engine.get_workflow(target_id)
        assert target.input == {"from": launcher}
        assert target.correlation_id == "corr"

        failing = await start(engine, "failing", {"k": 1})
        [task] = await engine.poll("breaks")
        await engine.update_task(result(task, "FAILED", reasonForIncompletion="kaput"))
        workflow = await engine.get_workflow(failing)
        assert workflow.status is WorkflowStatus.FAILED
        handler_id = workflow.output["conductor.failure_workflow"]
        handler = await engine.get_workflow(handler_id)
        assert handler.workflow_name == "on_failure"
        assert handler.input["workflowId"] == failing
        [handler_task] = await engine.poll("handler_task")
        assert handler_task.workflow_instance_id == handler_id


async def test_idempotency_key_strategies(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("once", [simple("a", "once_task")]))
        first = await start(engine, "once", idempotency_key="order-7")
        with pytest.raises(Conflict, match="idempotencyKey 'order-7' already exists"):
            await start(engine, "once", idempotency_key="order-7")
        same = await start(
            engine, "once", idempotency_key="order-7", idempotency_strategy="RETURN_EXISTING"
        )
        assert same == first
        with pytest.raises(Conflict):
            await start(
                engine, "once", idempotency_key="order-7", idempotency_strategy="FAIL_ON_RUNNING"
            )
        [task] = await engine.poll("once_task")
        await engine.update_task(result(task))
        # The keyed run finished: FAIL_ON_RUNNING starts a new one.
        fresh = await start(
            engine, "once", idempotency_key="order-7", idempotency_strategy="FAIL_ON_RUNNING"
        )
        assert fresh != first
        assert len(await engine.running_ids("once", None)) == 1
        # The key is scoped by workflow name.
        await register(engine, wf_def("other", [simple("a", "once_task")]))
        assert await start(engine, "other", idempotency_key="order-7") != first


async def test_restart_with_latest_definition(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        await register(engine, wf_def("evolving", [simple("a", "v1_task")]))
        wf_id = await start(engine, "evolving")
        await engine.terminate(wf_id, "upgrade")
        v2 = wf_def("evolving", [simple("b", "v2_task")], version=2)
        await register(engine, v2)
        await engine.restart(wf_id)  # same definition as before
        assert (await engine.get_workflow(wf_id)).tasks[0].task_type == "v1_task"
        await engine.terminate(wf_id, "upgrade again")
        await engine.restart(wf_id, use_latest_definitions=True)
        workflow = await engine.get_workflow(wf_id)
        assert workflow.workflow_version == 2
        assert [t.task_type for t in workflow.tasks] == ["v2_task"]
        [task] = await engine.poll("v2_task")
        assert task.workflow_instance_id == wf_id
        with pytest.raises(Conflict, match="only a terminal workflow"):
            await engine.restart(wf_id)


async def test_sweeper_recreates_a_lost_child(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        child = wf_def("lost_child", [simple("c", "lost_child_task")])
        parent = wf_def(
            "orphan_parent",
            [
                {
                    "name": "child",
                    "taskReferenceName": "sub",
                    "type": "SUB_WORKFLOW",
                    "subWorkflowParam": {"name": "lost_child"},
                    "inputParameters": {"k": "${workflow.input.k}"},
                }
            ],
        )
        await register(engine, child, parent)
        parent_id = await start(engine, "orphan_parent", {"k": 5})
        child_id = (await engine.get_workflow(parent_id)).tasks[0].sub_workflow_id
        assert isinstance(child_id, str)
        # As if the process died between the parent's commit and the child's creation:
        await engine.remove(child_id)
        with pytest.raises(NotFound):
            await engine.get_workflow(child_id)
        # The start set the parent's timer to system_task_recheck_ms: the sweep repairs.
        await trio.sleep(31)
        recreated = await engine.get_workflow(child_id)
        assert recreated.parent_workflow_id == parent_id
        assert recreated.input == {"k": 5}
        [task] = await engine.poll("lost_child_task")
        await engine.update_task(result(task))
        assert (await engine.get_workflow(parent_id)).status is WorkflowStatus.COMPLETED


async def test_sub_workflow_missing_definition_and_inline_definition(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine() as engine:
        inline_child = {
            "name": "inline_child",
            "version": 1,
            "tasks": [
                {
                    "name": "sv",
                    "taskReferenceName": "sv",
                    "type": "SET_VARIABLE",
                    "inputParameters": {"seen": "${workflow.input.v}"},
                }
            ],
            "outputParameters": {"seen": "${workflow.variables.seen}"},
        }
        await register(
            engine,
            wf_def(
                "needs_missing",
                [
                    {
                        "name": "child",
                        "taskReferenceName": "sub",
                        "type": "SUB_WORKFLOW",
                        "subWorkflowParam": {"name": "never_registered"},
                    }
                ],
            ),
            wf_def(
                "inline_parent",
                [
                    {
                        "name": "child",
                        "taskReferenceName": "sub",
                        "type": "SUB_WORKFLOW",
                        "subWorkflowParam": {"workflowDefinition": inline_child},
                        "inputParameters": {"v": 3},
                    }
                ],
                outputParameters={"seen": "${sub.output.seen}"},
            ),
        )
        failed = await engine.get_workflow(await start(engine, "needs_missing"))
        assert failed.status is WorkflowStatus.FAILED
        assert failed.tasks[0].status is TaskStatus.FAILED
        assert "never_registered" in str(failed.tasks[0].reason_for_incompletion)

        done = await engine.get_workflow(await start(engine, "inline_parent"))
        assert done.status is WorkflowStatus.COMPLETED
        assert done.output == {"seen": 3}


async def test_do_while_of_scripts_runs_in_one_commit(autojump_clock: trio.abc.Clock) -> None:
    async with running_engine() as engine:
        loop = {
            "name": "loop",
            "taskReferenceName": "loop",
            "type": "DO_WHILE",
            "loopCondition": "if ($.loop['iteration'] < 50) { true; } else { false; }",
            "loopOver": [
                {
                    "name": "inc",
                    "taskReferenceName": "inc",
                    "type": "INLINE",
                    "inputParameters": {"evaluatorType": "javascript", "expression": "1 + 1"},
                }
            ],
        }
        await register(engine, wf_def("loop50", [loop]))
        wf_id = await start(engine, "loop50")
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert len(workflow.tasks) == 51  # the loop row + 50 iterations
        record = await engine.store.load(wf_id)
        assert record is not None
        assert record.version == 1  # 100 script evaluations, one commit


async def test_runaway_chain_is_cut_and_resumed_by_the_sweeper(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with running_engine(config=EngineConfig(max_chain=10)) as engine:
        loop = {
            "name": "loop",
            "taskReferenceName": "loop",
            "type": "DO_WHILE",
            "loopCondition": "if ($.loop['iteration'] < 30) { true; } else { false; }",
            "loopOver": [
                {
                    "name": "inc",
                    "taskReferenceName": "inc",
                    "type": "INLINE",
                    "inputParameters": {"evaluatorType": "javascript", "expression": "1"},
                }
            ],
        }
        await register(engine, wf_def("loop30", [loop]))
        wf_id = await start(engine, "loop30")
        assert (await engine.get_workflow(wf_id)).status is WorkflowStatus.RUNNING  # cut
        started = trio.current_time()
        await trio.testing.wait_all_tasks_blocked()
        workflow = await engine.get_workflow(wf_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert len(workflow.tasks) == 31
        assert trio.current_time() == started  # resumed at once, not after a sleep
