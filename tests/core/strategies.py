"""Hypothesis strategies for Conductor wire JSON: task definitions and workflow definitions.

Rules: strategies produce *wire* JSON (dicts with camelCase keys, optional fields present
or absent, nullable fields sometimes null) so tests exercise decoding as well as encoding.
Generated workflow definitions are valid by construction: reference names are renumbered
to be unique, every fork is followed by its JOIN, every SWITCH/DECISION/DO_WHILE/
SUB_WORKFLOW carries its required fields, and generated text never contains `$`.
"""

from __future__ import annotations

import itertools
import string
from typing import Any

from hypothesis import strategies as st

# Text without `$`, so no generated value is an expression (keeps definitions valid).
_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " _-.:/é", max_size=12)
_NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=10)
_INTS = st.integers(min_value=0, max_value=2**31)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(_NAMES, inner, max_size=2)
    ),
    max_leaves=4,
)
JSON_MAPS = st.dictionaries(_NAMES, JSON_VALUES, max_size=2)


def _nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def task_defs(draw: st.DrawFn, name: str | None = None) -> dict[str, Any]:
    """A valid TaskDef as wire JSON (timeouts consistent, counts in range)."""
    timeout = draw(st.sampled_from([0, 60, 3600]))
    optional = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "description": _nullable(_TEXT),
                "retryCount": st.integers(0, 10),
                "retryLogic": st.sampled_from(["FIXED", "EXPONENTIAL_BACKOFF", "LINEAR_BACKOFF"]),
                "retryDelaySeconds": _INTS,
                "backoffScaleFactor": st.integers(1, 10),
                "timeoutPolicy": st.sampled_from(["RETRY", "TIME_OUT_WF", "ALERT_ONLY"]),
                "pollTimeoutSeconds": _nullable(_INTS),
                "concurrentExecLimit": _nullable(_INTS),
                "rateLimitPerFrequency": _nullable(st.integers(0, 100)),
                "rateLimitFrequencyInSeconds": _nullable(st.integers(1, 60)),
                "inputTemplate": JSON_MAPS,
                "inputKeys": st.lists(_NAMES, max_size=2),
                "outputKeys": st.lists(_NAMES, max_size=2),
                "isolationGroupId": _nullable(_NAMES),
                "ownerEmail": _nullable(st.just("owner@example.com")),
                "taskStatusListenerEnabled": st.booleans(),
                "enforceSchema": st.booleans(),
                "createTime": _nullable(_INTS),
                "createdBy": _nullable(_NAMES),
                "ownerApp": _nullable(_NAMES),
            },
        )
    )
    body: dict[str, Any] = {"name": name if name is not None else draw(_NAMES)}
    body.update(optional)
    body["timeoutSeconds"] = timeout
    # responseTimeoutSeconds <= timeoutSeconds when a timeout is set (a TaskDef rule).
    body["responseTimeoutSeconds"] = draw(st.integers(1, timeout or 7200))
    return body


_COMMON_TASK_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "description": _nullable(_TEXT),
    "inputParameters": JSON_MAPS,
    "optional": st.booleans(),
    "startDelay": st.integers(0, 100),
    "retryCount": _nullable(st.integers(0, 5)),
    "asyncComplete": st.booleans(),
    "rateLimited": _nullable(st.booleans()),
    "permissive": st.booleans(),
}


@st.composite
def _task(draw: st.DrawFn, /, type_: Any, **required: Any) -> dict[str, Any]:
    # The reference is a placeholder; `workflow_defs` renumbers every reference.
    body: dict[str, Any] = {"name": draw(_NAMES), "taskReferenceName": "?"}
    if type_ is not None:
        body["type"] = draw(type_) if isinstance(type_, st.SearchStrategy) else type_
    body.update(draw(st.fixed_dictionaries({}, optional=_COMMON_TASK_FIELDS)))
    for key, value in required.items():
        body[key] = draw(value) if isinstance(value, st.SearchStrategy) else value
    return body


def _with_inputs(
    tasks: st.SearchStrategy[dict[str, Any]], inputs: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Tasks whose inputParameters also hold the keys their type requires."""
    return st.builds(
        lambda body, extra: body | {"inputParameters": body.get("inputParameters", {}) | extra},
        tasks,
        inputs,
    )


def _leaf_tasks() -> st.SearchStrategy[dict[str, Any]]:
    worker = st.one_of(
        _task(None),
        _task("SIMPLE"),
        _task("MY_WORKER_TYPE"),
        _task("SIMPLE", taskDefinition=task_defs()),
    )
    system = st.one_of(
        _task("EVENT", sink=st.sampled_from(["conductor", "sqs:queue"])),
        _task("SET_VARIABLE"),
        _task("NOOP"),
        _task("HUMAN"),
        _task("SUB_WORKFLOW", subWorkflowParam=_sub_workflow_params()),
    )
    with_inputs = st.one_of(
        _with_inputs(
            _task("WAIT"),
            st.one_of(
                st.just({}),
                st.fixed_dictionaries({"duration": st.sampled_from(["30 seconds", "1d 2h"])}),
                st.fixed_dictionaries({"until": st.sampled_from(["2030-01-31 10:15 UTC"])}),
            ),
        ),
        _with_inputs(
            _task("HTTP"),
            st.fixed_dictionaries(
                {
                    "http_request": st.fixed_dictionaries(
                        {
                            "uri": st.just("http://example.com/x"),
                            "method": st.sampled_from(["GET", "POST"]),
                        },
                        optional={"headers": st.dictionaries(_NAMES, _TEXT, max_size=2)},
                    )
                }
            ),
        ),
        _with_inputs(
            _task("JSON_JQ_TRANSFORM"),
            st.fixed_dictionaries({"queryExpression": st.just(".a")}),
        ),
        _with_inputs(
            _task("INLINE"),
            st.fixed_dictionaries(
                {
                    "evaluatorType": st.sampled_from(["javascript", "graaljs"]),
                    "expression": st.just("1 + 1"),
                }
            ),
        ),
        _with_inputs(
            _task("TERMINATE", optional=False),
            st.fixed_dictionaries(
                {"terminationStatus": st.sampled_from(["COMPLETED", "FAILED", "TERMINATED"])}
            ),
        ),
        _with_inputs(
            _task("DYNAMIC", dynamicTaskNameParam="taskToRun"),
            st.fixed_dictionaries({"taskToRun": _NAMES}),
        ),
    )
    return st.one_of(worker, system, with_inputs)


@st.composite
def _sub_workflow_params(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"name": draw(_NAMES)}
    body.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "version": _nullable(st.integers(1, 5)),
                    "taskToDomain": _nullable(st.dictionaries(_NAMES, _NAMES, max_size=2)),
                    "priority": _nullable(st.integers(0, 99)),
                    "workflowDefinition": st.one_of(
                        st.just("${workflow.input.childDefinition}"), _inline_definitions()
                    ),
                },
            )
        )
    )
    return body


@st.composite
def _inline_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A small inline sub-workflow definition (its own reference namespace)."""
    tasks = draw(st.lists(_task(st.sampled_from(["SIMPLE", "NOOP"])), min_size=1, max_size=2))
    for i, body in enumerate(tasks):
        body["taskReferenceName"] = f"c{i}"
    return {"name": draw(_NAMES), "tasks": tasks, "schemaVersion": 2}


# A "unit" is a list of tasks that must stay adjacent (a fork and its JOIN).
Unit = list[dict[str, Any]]


def _task_lists(units: st.SearchStrategy[Unit]) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(units, min_size=1, max_size=3).map(lambda us: list(itertools.chain(*us)))


def _extend(units: st.SearchStrategy[Unit]) -> st.SearchStrategy[Unit]:
    lists = _task_lists(units)
    switch = st.builds(
        lambda t, cases, default: [t | {"decisionCases": cases, "defaultCase": default}],
        _task("SWITCH", evaluatorType="value-param", expression="k"),
        st.dictionaries(_NAMES, lists, min_size=1, max_size=2),
        st.one_of(st.just([]), lists),
    )
    decision = st.builds(
        lambda t, cases: [t | {"decisionCases": cases}],
        _task("DECISION", caseValueParam="k"),
        st.dictionaries(_NAMES, lists, min_size=1, max_size=2),
    )
    fork = st.builds(
        lambda t, branches, j: [t | {"forkTasks": branches}, j],
        _task("FORK_JOIN"),
        st.lists(lists, min_size=1, max_size=3),
        _task("JOIN"),
    )
    do_while = st.builds(
        lambda t, body, condition: [t | {"loopOver": body, "loopCondition": condition}],
        _task("DO_WHILE"),
        lists,
        st.sampled_from(["", "false", "$.loop['iteration'] < 3"]),
    )
    return st.one_of(switch, decision, fork, do_while)


_UNITS: st.SearchStrategy[Unit] = st.recursive(
    _leaf_tasks().map(lambda t: [t]), _extend, max_leaves=6
)


def _renumber(tasks: list[dict[str, Any]], counter: itertools.count[int]) -> None:
    """Give every task a unique reference; JOINs wait for nothing (joinOn stays valid)."""
    for body in tasks:
        body["taskReferenceName"] = f"t{next(counter)}"
        for case in body.get("decisionCases", {}).values():
            _renumber(case, counter)
        _renumber(body.get("defaultCase", []), counter)
        for branch in body.get("forkTasks", []):
            _renumber(branch, counter)
        _renumber(body.get("loopOver", []), counter)


@st.composite
def workflow_defs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid WorkflowDef as wire JSON, with nested SWITCH/DECISION/FORK/DO_WHILE."""
    tasks = draw(_task_lists(_UNITS))
    _renumber(tasks, itertools.count())
    body: dict[str, Any] = {"name": draw(_NAMES), "tasks": tasks}
    body.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "description": _nullable(_TEXT),
                    "version": st.integers(1, 100),
                    "inputParameters": st.lists(_NAMES, max_size=3),
                    "outputParameters": JSON_MAPS,
                    "inputTemplate": JSON_MAPS,
                    "variables": JSON_MAPS,
                    "failureWorkflow": _nullable(_NAMES),
                    "schemaVersion": st.just(2),
                    "restartable": st.booleans(),
                    "workflowStatusListenerEnabled": st.booleans(),
                    "ownerEmail": _nullable(st.just("owner@example.com")),
                    "timeoutPolicy": st.sampled_from(["TIME_OUT_WF", "ALERT_ONLY"]),
                    "timeoutSeconds": _INTS,
                    "enforceSchema": st.booleans(),
                    "metadata": JSON_MAPS,
                    "maskedFields": st.lists(_NAMES, max_size=2),
                    "createTime": _nullable(_INTS),
                    "updatedBy": _nullable(_NAMES),
                },
            )
        )
    )
    return body
