"""Definition validation: one invalid definition per rule with the exact error it gives,
every problem reported at once, and no errors for Conductor's own samples.

Definitions are written as wire JSON (dicts) and decoded as the server would, so the
tests exercise the same path as a request body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core import codec
from core.errors import DefinitionError, MappingError
from core.models import StartWorkflowRequest, TaskDef, WorkflowDef
from core.validation import (
    check_workflow_def,
    decode_task_defs,
    decode_workflow_def,
    validate_workflow_def,
)
from hotpath.mapping import compile_template
from tests.core.defs import errors_of, fork, join, switch, task, wf

DUP_MSG = "reference names must be unique across the definition"

# (id, definition, exact errors)
INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    ("empty-name", wf(task("a"), name=""), ["name: must not be empty; give the workflow a name"]),
    ("blank-name", wf(task("a"), name="  "), ["name: must not be empty; give the workflow a name"]),
    ("no-tasks", wf(), ['tasks: a workflow needs at least one task; add a task to "tasks"']),
    (
        "schema-version-1",
        wf(task("a"), schemaVersion=1),
        [
            "schemaVersion: must be 2, got 1; only schema version 2 definitions run (inputs "
            'written as ${...} expressions), set "schemaVersion": 2'
        ],
    ),
    (
        "negative-workflow-timeout",
        wf(task("a"), timeoutSeconds=-1),
        ["timeoutSeconds: must be >= 0, got -1; use 0 for no workflow timeout"],
    ),
    (
        "duplicate-ref-in-decision-case",
        wf(
            task("charge"),
            task("b"),
            task("c"),
            switch("sw", {"ok": [task("charge")]}),
        ),
        [
            "tasks[3].decisionCases.ok[0].taskReferenceName: duplicate reference 'charge' "
            f"(first used at tasks[0]); {DUP_MSG}"
        ],
    ),
    (
        "duplicate-ref-in-default-case",
        wf(switch("sw", {"ok": [task("x")]}, defaultCase=[task("sw")])),
        [
            "tasks[0].defaultCase[0].taskReferenceName: duplicate reference 'sw' "
            f"(first used at tasks[0]); {DUP_MSG}"
        ],
    ),
    (
        "duplicate-ref-across-fork-branches",
        wf(fork("f", [task("x")], [task("x")]), join("j", "x")),
        [
            "tasks[0].forkTasks[1][0].taskReferenceName: duplicate reference 'x' "
            f"(first used at tasks[0].forkTasks[0][0]); {DUP_MSG}"
        ],
    ),
    (
        "duplicate-ref-in-loop",
        wf(task("body"), task("loop", "DO_WHILE", loopCondition="false", loopOver=[task("body")])),
        [
            "tasks[1].loopOver[0].taskReferenceName: duplicate reference 'body' "
            f"(first used at tasks[0]); {DUP_MSG}"
        ],
    ),
    (
        "odd-case-key-in-path",
        wf(task("a"), switch("sw", {"a b": [task("a")]})),
        [
            "tasks[1].decisionCases[\"a b\"][0].taskReferenceName: duplicate reference 'a' "
            f"(first used at tasks[0]); {DUP_MSG}"
        ],
    ),
    (
        "empty-task-name",
        wf({"name": "", "taskReferenceName": "a"}),
        [
            "tasks[0].name: must not be empty; set the task's name (the TaskDef name for a "
            "worker task)"
        ],
    ),
    (
        "empty-reference",
        wf({"name": "a", "taskReferenceName": ""}),
        [
            "tasks[0].taskReferenceName: must not be empty; give the task a reference name "
            "unique in the workflow"
        ],
    ),
    (
        "empty-type",
        wf(task("a", "")),
        ['tasks[0].type: must not be empty; omit "type" for a SIMPLE task or name a task type'],
    ),
    (
        "negative-start-delay",
        wf(task("a", startDelay=-5)),
        [
            "tasks[0].startDelay: must be >= 0, got -5; it is the delay in seconds before the "
            "task can be polled"
        ],
    ),
    (
        "negative-retry-count",
        wf(task("a", retryCount=-1)),
        [
            "tasks[0].retryCount: must be >= 0, got -1; it overrides the TaskDef's retryCount "
            "(0 = no retries)"
        ],
    ),
    (
        "event-without-sink",
        wf(task("e", "EVENT")),
        [
            'tasks[0].sink: an EVENT task needs a sink; set "sink", e.g. "conductor" or '
            '"sqs:<queue name>"'
        ],
    ),
    (
        "event-blank-sink",
        wf(task("e", "EVENT", sink=" ")),
        [
            'tasks[0].sink: an EVENT task needs a sink; set "sink", e.g. "conductor" or '
            '"sqs:<queue name>"'
        ],
    ),
    (
        "decision-without-case-param",
        wf(task("d", "DECISION", decisionCases={"a": [task("x")]})),
        [
            "tasks[0].caseValueParam: a DECISION task needs caseValueParam (an input key) or "
            "caseExpression (JavaScript); set one of them"
        ],
    ),
    (
        "decision-without-cases",
        wf(task("d", "DECISION", caseValueParam="k", inputParameters={"k": 1})),
        [
            "tasks[0].decisionCases: a DECISION task needs at least one case; add a "
            "decisionCases entry that maps a case value to a task list"
        ],
    ),
    (
        "switch-without-evaluator",
        wf(task("s", "SWITCH", expression="k", decisionCases={"a": [task("x")]})),
        [
            'tasks[0].evaluatorType: a SWITCH task needs an evaluatorType; set "value-param" '
            '(expression names an input key) or "javascript" (expression is a script over $)'
        ],
    ),
    (
        "switch-unknown-evaluator",
        wf(switch("s", {"a": [task("x")]}) | {"evaluatorType": "python3"}),
        [
            "tasks[0].evaluatorType: unknown evaluatorType 'python3'; use one of value-param, "
            "javascript, graaljs"
        ],
    ),
    (
        "switch-without-expression",
        wf(task("s", "SWITCH", evaluatorType="javascript", decisionCases={"a": [task("x")]})),
        [
            "tasks[0].expression: a SWITCH task needs an expression; with value-param name an "
            "inputParameters key, with javascript write a script over $ whose result picks "
            "the case"
        ],
    ),
    (
        "switch-without-cases",
        wf(switch("s", {})),
        [
            "tasks[0].decisionCases: a SWITCH task needs at least one case; add a "
            "decisionCases entry that maps a case value to a task list"
        ],
    ),
    (
        "dynamic-without-param",
        wf(task("d", "DYNAMIC")),
        [
            "tasks[0].dynamicTaskNameParam: a DYNAMIC task needs dynamicTaskNameParam; set it "
            "to the inputParameters key whose value names the task to run"
        ],
    ),
    (
        "dynamic-param-not-in-inputs",
        wf(task("d", "DYNAMIC", dynamicTaskNameParam="taskToRun")),
        [
            "tasks[0].inputParameters: dynamicTaskNameParam is 'taskToRun' but inputParameters "
            "has no 'taskToRun'; add it (its value names the task to run)"
        ],
    ),
    (
        "fork-without-branches",
        wf(fork("f"), join("j")),
        [
            "tasks[0].forkTasks: a FORK_JOIN task needs at least one branch; add task lists "
            "to forkTasks"
        ],
    ),
    (
        "fork-empty-branch",
        wf(fork("f", [task("x")], []), join("j", "x")),
        [
            "tasks[0].forkTasks[1]: a fork branch needs at least one task; add tasks to the "
            "branch or remove it"
        ],
    ),
    (
        "fork-last-in-list",
        wf(task("a"), fork("f", [task("x")])),
        [
            "tasks[1]: a FORK_JOIN must be followed by a JOIN in the same task list; add a "
            "JOIN right after 'f'"
        ],
    ),
    (
        "fork-followed-by-simple",
        wf(switch("s", {"c": [fork("f", [task("x")]), task("y")]})),
        [
            "tasks[0].decisionCases.c[0]: a FORK_JOIN must be followed by a JOIN in the same "
            "task list; add a JOIN right after 'f'"
        ],
    ),
    (
        "dynamic-fork-without-params",
        wf(task("df", "FORK_JOIN_DYNAMIC"), join("j")),
        [
            "tasks[0].dynamicForkTasksParam: a FORK_JOIN_DYNAMIC task needs "
            "dynamicForkTasksParam (the input key holding the task list); set it, or fork one "
            "task per item with inputParameters.forkTaskInputs",
            "tasks[0].dynamicForkTasksInputParamName: a FORK_JOIN_DYNAMIC task needs "
            "dynamicForkTasksInputParamName (the input key holding each forked task's input, "
            "by reference name); set it",
        ],
    ),
    (
        "dynamic-fork-both-forms",
        wf(
            task(
                "df",
                "FORK_JOIN_DYNAMIC",
                dynamicForkJoinTasksParam="legacy",
                dynamicForkTasksParam="tasks",
                dynamicForkTasksInputParamName="inputs",
            ),
            join("j"),
        ),
        [
            "tasks[0].dynamicForkJoinTasksParam: use either dynamicForkJoinTasksParam (legacy) "
            "or dynamicForkTasksParam with dynamicForkTasksInputParamName, not both; remove "
            "one form"
        ],
    ),
    (
        "dynamic-fork-param-not-in-inputs",
        wf(
            task(
                "df",
                "FORK_JOIN_DYNAMIC",
                dynamicForkTasksParam="tasks",
                dynamicForkTasksInputParamName="inputs",
                inputParameters={"inputs": {}},
            ),
            join("j"),
        ),
        [
            "tasks[0].inputParameters: dynamicForkTasksParam is 'tasks' but inputParameters "
            "has no 'tasks'; add it (its value is the list of tasks to fork)"
        ],
    ),
    (
        "dynamic-fork-without-join",
        wf(task("df", "FORK_JOIN_DYNAMIC", inputParameters={"forkTaskInputs": []})),
        [
            "tasks[0]: a FORK_JOIN_DYNAMIC must be followed by a JOIN in the same task list; "
            "add a JOIN right after 'df'"
        ],
    ),
    (
        "join-on-unknown-ref",
        wf(fork("f", [task("x")], [task("y")]), join("j", "x", "z")),
        [
            "tasks[1].joinOn[1]: 'z' is not a task reference in this workflow; list the "
            "taskReferenceNames of the tasks to wait for"
        ],
    ),
    (
        "exclusive-join-unknown-default",
        wf(
            task("a"),
            task("xj", "EXCLUSIVE_JOIN", joinOn=["a"], defaultExclusiveJoinTask=["nope"]),
        ),
        [
            "tasks[1].defaultExclusiveJoinTask[0]: 'nope' is not a task reference in this "
            "workflow; list the taskReferenceNames of the tasks to wait for"
        ],
    ),
    (
        "http-without-request",
        wf(task("h", "HTTP")),
        [
            "tasks[0].inputParameters.http_request: an HTTP task needs a request; add "
            "inputParameters.http_request with uri and method (or uri and method directly in "
            "inputParameters), or use a TaskDef whose inputTemplate has http_request"
        ],
    ),
    (
        "http-request-without-uri-and-method",
        wf(task("h", "HTTP", inputParameters={"http_request": {"body": {}}})),
        [
            "tasks[0].inputParameters.http_request.uri: required; set the URL to call",
            "tasks[0].inputParameters.http_request.method: required; set one of GET, PUT, "
            "POST, DELETE, OPTIONS, HEAD, PATCH",
        ],
    ),
    (
        "http-unknown-method",
        wf(task("h", "HTTP", inputParameters={"http_request": {"uri": "u", "method": "FETCH"}})),
        [
            "tasks[0].inputParameters.http_request.method: unknown method 'FETCH'; use one of "
            "GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH"
        ],
    ),
    (
        "http-top-level-uri-without-method",
        wf(task("h", "HTTP", inputParameters={"uri": "http://x"})),
        [
            "tasks[0].inputParameters.method: required; set one of GET, PUT, POST, DELETE, "
            "OPTIONS, HEAD, PATCH"
        ],
    ),
    (
        "http-request-literal-string",
        wf(task("h", "HTTP", inputParameters={"http_request": "http://x"})),
        [
            "tasks[0].inputParameters.http_request: must be an object with uri and method, or "
            "a ${...} expression that yields one"
        ],
    ),
    (
        "kafka-without-request",
        wf(task("k", "KAFKA_PUBLISH")),
        [
            "tasks[0].inputParameters.kafka_request: a KAFKA_PUBLISH task needs "
            "inputParameters.kafka_request (bootStrapServers, topic, value), or a TaskDef "
            "whose inputTemplate has kafka_request"
        ],
    ),
    (
        "jq-without-query",
        wf(task("q", "JSON_JQ_TRANSFORM", inputParameters={"data": 1})),
        [
            "tasks[0].inputParameters.queryExpression: a JSON_JQ_TRANSFORM task needs a jq "
            'program; add inputParameters.queryExpression, e.g. ".key"'
        ],
    ),
    (
        "inline-without-expression",
        wf(task("i", "INLINE", inputParameters={"evaluatorType": "javascript"})),
        [
            "tasks[0].inputParameters.expression: an INLINE task needs a script; add "
            "inputParameters.expression (evaluatorType defaults to javascript)"
        ],
    ),
    (
        "inline-unknown-evaluator",
        wf(task("i", "INLINE", inputParameters={"evaluatorType": "ruby", "expression": "1"})),
        [
            "tasks[0].inputParameters.evaluatorType: unknown evaluatorType 'ruby'; use one of "
            "value-param, javascript, graaljs"
        ],
    ),
    (
        "lambda-without-script",
        wf(task("l", "LAMBDA")),
        [
            "tasks[0].inputParameters.scriptExpression: a LAMBDA task needs a script; add "
            "inputParameters.scriptExpression (or use INLINE)"
        ],
    ),
    (
        "terminate-optional",
        wf(task("t", "TERMINATE", optional=True, inputParameters={"terminationStatus": "FAILED"})),
        ['tasks[0].optional: a TERMINATE task cannot be optional; remove "optional": true'],
    ),
    (
        "terminate-without-status",
        wf(task("t", "TERMINATE")),
        [
            "tasks[0].inputParameters.terminationStatus: a TERMINATE task needs a "
            "terminationStatus; set inputParameters.terminationStatus to one of COMPLETED, "
            "FAILED, TERMINATED"
        ],
    ),
    (
        "terminate-bad-status",
        wf(task("t", "TERMINATE", inputParameters={"terminationStatus": "DONE"})),
        [
            "tasks[0].inputParameters.terminationStatus: must be one of COMPLETED, FAILED, "
            "TERMINATED, got 'DONE'"
        ],
    ),
    (
        "do-while-without-condition",
        wf(task("l", "DO_WHILE", loopOver=[task("b")])),
        [
            "tasks[0].loopCondition: a DO_WHILE task needs a loopCondition (JavaScript, true = "
            'run again); set it, or "" when iterating over items'
        ],
    ),
    (
        "do-while-null-condition",
        wf(task("l", "DO_WHILE", loopCondition=None, loopOver=[task("b")])),
        [
            "tasks[0].loopCondition: a DO_WHILE task needs a loopCondition (JavaScript, true = "
            'run again); set it, or "" when iterating over items'
        ],
    ),
    (
        "do-while-without-body",
        wf(task("l", "DO_WHILE", loopCondition="false")),
        [
            "tasks[0].loopOver: a DO_WHILE task needs at least one task in loopOver; add the "
            "loop body"
        ],
    ),
    (
        "sub-workflow-without-param",
        wf(task("s", "SUB_WORKFLOW")),
        [
            'tasks[0].subWorkflowParam: a SUB_WORKFLOW task needs subWorkflowParam; set {"name": '
            '<workflow name>, "version": <n>} or an inline workflowDefinition'
        ],
    ),
    (
        "sub-workflow-without-name",
        wf(task("s", "SUB_WORKFLOW", subWorkflowParam={"version": 1})),
        [
            "tasks[0].subWorkflowParam.name: required unless workflowDefinition is given; name "
            "the workflow to start"
        ],
    ),
    (
        "sub-workflow-definition-literal-string",
        wf(task("s", "SUB_WORKFLOW", subWorkflowParam={"name": "c", "workflowDefinition": "c"})),
        [
            "tasks[0].subWorkflowParam.workflowDefinition: a string here must be a ${...} "
            "expression that yields a workflow definition; write the definition inline as an "
            "object instead"
        ],
    ),
    (
        "sub-workflow-bad-version",
        wf(task("s", "SUB_WORKFLOW", subWorkflowParam={"name": "c", "version": "latest"})),
        [
            "tasks[0].subWorkflowParam.version: must be a version number or a ${...} "
            "expression, got 'latest'; omit it for the latest version"
        ],
    ),
    (
        "sub-workflow-invalid-inline-definition",
        wf(
            task(
                "s", "SUB_WORKFLOW", subWorkflowParam={"workflowDefinition": wf(task("x", "EVENT"))}
            )
        ),
        [
            "tasks[0].subWorkflowParam.workflowDefinition.tasks[0].sink: an EVENT task needs "
            'a sink; set "sink", e.g. "conductor" or "sqs:<queue name>"'
        ],
    ),
    (
        "start-workflow-without-request",
        wf(task("st", "START_WORKFLOW")),
        [
            "tasks[0].inputParameters.startWorkflow: a START_WORKFLOW task needs "
            'inputParameters.startWorkflow, a start request with at least "name"; add it'
        ],
    ),
    (
        "start-workflow-request-without-name",
        wf(task("st", "START_WORKFLOW", inputParameters={"startWorkflow": {"input": {}}})),
        ["tasks[0].inputParameters.startWorkflow.name: required; name the workflow to start"],
    ),
    (
        "wait-duration-and-until",
        wf(task("w", "WAIT", inputParameters={"duration": "1s", "until": "2030-01-01"})),
        [
            "tasks[0].inputParameters: a WAIT task takes either duration or until, not both; "
            "remove one"
        ],
    ),
    (
        "wait-bad-duration",
        wf(task("w", "WAIT", inputParameters={"duration": "5 fortnights"})),
        [
            "tasks[0].inputParameters.duration: cannot parse duration '5 fortnights'; write "
            'amounts with units in the order days, hours, minutes, seconds, e.g. "30 seconds", '
            '"5 mins" or "1d 2h 3m 4s"'
        ],
    ),
    (
        "wait-duration-without-unit",
        wf(task("w", "WAIT", inputParameters={"duration": 30})),
        [
            "tasks[0].inputParameters.duration: cannot parse duration 30; write amounts with "
            'units in the order days, hours, minutes, seconds, e.g. "30 seconds", "5 mins" or '
            '"1d 2h 3m 4s"'
        ],
    ),
    (
        "wait-bad-until",
        wf(task("w", "WAIT", inputParameters={"until": "2030-13-01 10:00"})),
        [
            "tasks[0].inputParameters.until: cannot parse until '2030-13-01 10:00'; use "
            '"yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm z" (z = a time zone such as UTC) or '
            '"yyyy-MM-dd"'
        ],
    ),
    (
        "unknown-root-in-top-level-input",
        wf(task("a", inputParameters={"x": "${b.output.x}"})),
        [
            "tasks[0].inputParameters.x: '${b.output.x}' refers to 'b', which is not a task "
            "reference in this workflow; use the taskReferenceName of a task in the "
            "definition, or workflow.input / workflow.variables"
        ],
    ),
    (
        "unknown-root-deep-in-top-level-input",
        wf(task("a", inputParameters={"req": {"list": [1, "id ${ghost.taskId}"]}})),
        [
            "tasks[0].inputParameters.req.list[1]: 'id ${ghost.taskId}' refers to 'ghost', "
            "which is not a task reference in this workflow; use the taskReferenceName of a "
            "task in the definition, or workflow.input / workflow.variables"
        ],
    ),
    (
        "inline-task-def-range",
        wf(task("a", taskDefinition={"name": "a", "retryCount": -2})),
        [
            "tasks[0].taskDefinition.retryCount: must be >= 0, got -2; it is the number of "
            "retries after the first attempt"
        ],
    ),
]


@pytest.mark.parametrize(
    ("definition", "expected"), [pytest.param(d, e, id=i) for i, d, e in INVALID]
)
def test_invalid_definition_gives_exact_errors(
    definition: dict[str, Any], expected: list[str]
) -> None:
    assert errors_of(definition) == expected


def test_each_rule_case_has_a_unique_id() -> None:
    ids = [i for i, _, _ in INVALID]
    assert len(ids) == len(set(ids))


def _mapping_error(text: str) -> str:
    with pytest.raises(MappingError) as info:
        compile_template(text)
    return info.value.message


@pytest.mark.parametrize(
    ("where", "definition", "path"),
    [
        (
            "task input",
            wf(task("a", inputParameters={"m": {"x": ["${workflow.input.a"]}})),
            "tasks[0].inputParameters.m.x[0]",
        ),
        (
            "nested task input",
            wf(switch("s", {"c": [task("b", inputParameters={"x": "${a. b}"})]})),
            "tasks[0].decisionCases.c[0].inputParameters.x",
        ),
        (
            "workflow output",
            wf(task("a"), outputParameters={"o": "${a.output["}),
            "outputParameters.o",
        ),
        (
            "event sink",
            wf(task("e", "EVENT", sink="conductor:${workflow.input.q")),
            "tasks[0].sink",
        ),
    ],
)
def test_malformed_expression_reports_the_mapping_engine_message(
    where: str, definition: dict[str, Any], path: str
) -> None:
    defn = codec.convert(definition, WorkflowDef)
    [error] = validate_workflow_def(defn)
    assert error.path == path, where
    assert isinstance(error.invalid_value, str)
    assert error.message == _mapping_error(error.invalid_value)


VALID: list[tuple[str, dict[str, Any]]] = [
    (
        "roots may name later and nested tasks, workflow and CPEWF_TASK_ID",
        wf(
            task("a", inputParameters={"x": "${inner.output.x}", "y": "${z.output}"}),
            switch("s", {"c": [task("inner")]}),
            task("z", inputParameters={"id": "${CPEWF_TASK_ID}", "w": "${workflow.input}"}),
        ),
    ),
    (
        "nested tasks' roots are not checked",
        wf(switch("s", {"c": [task("b", inputParameters={"x": "${elsewhere.output}"})]})),
    ),
    (
        "escaped and empty expressions",
        wf(task("a", inputParameters={"x": "$${b.output}", "y": "${}"})),
    ),
    (
        "duration forms",
        wf(
            *[
                task(f"w{i}", "WAIT", inputParameters={"duration": d})
                for i, d in enumerate(
                    ["30 seconds", "1d 2h 3m 4s", "5 mins", "2 HOURS", "1day", "10s"]
                )
            ]
        ),
    ),
    (
        "until forms",
        wf(
            *[
                task(f"w{i}", "WAIT", inputParameters={"until": u})
                for i, u in enumerate(
                    [
                        "2030-01-31 10:15",
                        "2030-01-31 10:15 UTC",
                        "2030-01-31",
                        "2030-01-31 10:15 America/New_York",
                        "2030-01-31 10:15 +05:30",
                    ]
                )
            ]
        ),
    ),
    (
        "expression duration",
        wf(task("w", "WAIT", inputParameters={"duration": "${workflow.input.d}"})),
    ),
    ("WAIT without duration or until", wf(task("w", "WAIT"))),
    (
        "terminate status from an expression",
        wf(task("t", "TERMINATE", inputParameters={"terminationStatus": "${workflow.input.s}"})),
    ),
    (
        "do-while with empty condition",
        wf(task("l", "DO_WHILE", loopCondition="", loopOver=[task("b")])),
    ),
    (
        "dynamic fork by forkTaskInputs",
        wf(task("df", "FORK_JOIN_DYNAMIC", inputParameters={"forkTaskInputs": [1, 2]}), join("j")),
    ),
    (
        "dynamic fork legacy form",
        wf(
            task(
                "df",
                "FORK_JOIN_DYNAMIC",
                dynamicForkJoinTasksParam="d",
                inputParameters={"d": "${workflow.input.d}"},
            ),
            join("j"),
        ),
    ),
    (
        "join after a dynamic fork may list runtime refs",
        wf(
            task("df", "FORK_JOIN_DYNAMIC", inputParameters={"forkTaskInputs": []}),
            join("j", "_df_0"),
        ),
    ),
    (
        "http with top-level uri and method",
        wf(task("h", "HTTP", inputParameters={"uri": "http://x", "method": "post"})),
    ),
    (
        "http with an expression request",
        wf(task("h", "HTTP", inputParameters={"http_request": "${workflow.input.req}"})),
    ),
    (
        "http with an inline TaskDef template",
        wf(
            task(
                "h",
                "HTTP",
                taskDefinition={
                    "name": "h",
                    "inputTemplate": {"http_request": {"uri": "u", "method": "GET"}},
                },
            )
        ),
    ),
    (
        "sub-workflow by inline definition only",
        wf(task("s", "SUB_WORKFLOW", subWorkflowParam={"workflowDefinition": wf(task("s"))})),
    ),
    (
        "sub-workflow definition from an expression",
        wf(
            task(
                "s",
                "SUB_WORKFLOW",
                subWorkflowParam={"name": "c", "workflowDefinition": "${workflow.input.d}"},
            )
        ),
    ),
    ("unknown task type is a worker task", wf(task("a", "MY_CUSTOM_TYPE"))),
    (
        "inline TaskDef may break cross-field timeouts (as Conductor's own samples do)",
        wf(
            task(
                "a",
                taskDefinition={"name": "a", "timeoutSeconds": 120, "responseTimeoutSeconds": 3600},
            )
        ),
    ),
]


@pytest.mark.parametrize("definition", [pytest.param(d, id=i) for i, d in VALID])
def test_valid_definition_has_no_errors(definition: dict[str, Any]) -> None:
    assert errors_of(definition) == []


def test_http_request_may_come_from_a_registered_task_def() -> None:
    definition = wf(task("h", "HTTP"))
    registered = {"h": TaskDef(name="h", input_template={"http_request": {"uri": "u"}})}
    assert errors_of(definition, task_defs=registered) == []
    assert len(errors_of(definition, task_defs={"other": registered["h"]})) == 1


def test_all_problems_are_reported_at_once_in_document_order() -> None:
    definition = wf(
        task("a", "EVENT", inputParameters={"x": "${nope.output}"}),
        switch("a", {"c": [task("l", "DO_WHILE")]}),
        fork("f", [task("b")]),
        task("t", "TERMINATE", optional=True, inputParameters={"terminationStatus": "X"}),
        name="",
        schemaVersion=3,
    )
    assert [e.split(":")[0] for e in errors_of(definition)] == [
        "name",
        "schemaVersion",
        "tasks[0].sink",
        "tasks[0].inputParameters.x",
        "tasks[1].taskReferenceName",
        "tasks[1].decisionCases.c[0].loopCondition",
        "tasks[1].decisionCases.c[0].loopOver",
        "tasks[2]",
        "tasks[3].optional",
        "tasks[3].inputParameters.terminationStatus",
    ]


def test_check_raises_definition_error_with_every_problem() -> None:
    defn = codec.convert(wf(task("a", "EVENT"), task("a")), WorkflowDef)
    with pytest.raises(DefinitionError) as info:
        check_workflow_def(defn)
    assert [e.path for e in info.value.errors] == ["tasks[0].sink", "tasks[1].taskReferenceName"]
    assert info.value.http_status == 400
    assert info.value.message.startswith("Invalid workflow definition: tasks[0].sink: ")


def test_validation_path_prefix() -> None:
    defn = codec.convert(wf(task("e", "EVENT")), WorkflowDef)
    [error] = validate_workflow_def(defn, path="workflowDef")
    assert error.path == "workflowDef.tasks[0].sink"


# --------------------------------------------------------------------------- samples


def _sample_definitions(shared: Path) -> list[tuple[str, WorkflowDef]]:
    found: list[tuple[str, WorkflowDef]] = []
    for path in sorted((shared / "conductor-samples").rglob("*.json")):
        raw = json.loads(path.read_bytes())
        if isinstance(raw, dict) and "tasks" in raw:
            found.append((path.name, codec.decode(path.read_bytes(), WorkflowDef)))
        elif isinstance(raw, dict) and "workflowDef" in raw:
            request = codec.decode(path.read_bytes(), StartWorkflowRequest)
            assert isinstance(request.workflow_def, WorkflowDef)
            found.append((path.name, request.workflow_def))
    return found


def test_conductor_samples_are_valid(shared_dir: Path) -> None:
    samples = _sample_definitions(shared_dir)
    assert len(samples) >= 18  # kitchensink, sub_flow_1, two ephemeral requests, harness
    for name, defn in samples:
        assert validate_workflow_def(defn) == [], name


def test_kitchensink_task_defs_are_valid(shared_dir: Path) -> None:
    data = (shared_dir / "conductor-samples/kitchensink/kitchensink_taskdefs.json").read_bytes()
    defs = decode_task_defs(data)
    assert len(defs) == 41
    kitchensink = (shared_dir / "conductor-samples/kitchensink/kitchensink.json").read_bytes()
    assert (
        decode_workflow_def(kitchensink, task_defs={t.name: t for t in defs}).name == "kitchensink"
    )
