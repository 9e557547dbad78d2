"""TaskDef validation, the decode-and-validate helpers, and the nesting limit: exact errors
and paths, as the API answers them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import codec
from core.errors import DefinitionError, MappingError
from core.models import TaskDef
from core.validation import (
    MAX_NESTING,
    check_task_def,
    decode_task_def,
    decode_task_defs,
    decode_workflow_def,
    decode_workflow_defs,
    validate_task_def,
)
from hotpath.mapping import compile_template
from tests.core.defs import task, wf


def _mapping_error(text: str) -> str:
    with pytest.raises(MappingError) as info:
        compile_template(text)
    return info.value.message


# --------------------------------------------------------------------------- task defs

TASK_DEF_INVALID: list[tuple[dict[str, Any], list[str]]] = [
    ({"name": ""}, ["name: must not be empty; name the task type that workers poll for"]),
    (
        {"name": "t", "retryCount": -1},
        ["retryCount: must be >= 0, got -1; it is the number of retries after the first attempt"],
    ),
    (
        {"name": "t", "retryDelaySeconds": -1},
        ["retryDelaySeconds: must be >= 0, got -1; it is the base delay before a retry"],
    ),
    (
        {"name": "t", "backoffScaleFactor": 0},
        ["backoffScaleFactor: must be >= 1, got 0; it is the LINEAR_BACKOFF multiplier"],
    ),
    (
        {"name": "t", "maxRetryDelaySeconds": -1},
        ["maxRetryDelaySeconds: must be >= 0, got -1; it is the cap on a retry delay"],
    ),
    (
        {"name": "t", "backoffJitterMs": -1},
        ["backoffJitterMs: must be >= 0, got -1; it is the random delay added to a retry"],
    ),
    (
        {"name": "t", "timeoutSeconds": -1},
        ["timeoutSeconds: must be >= 0, got -1; use 0 for no timeout"],
    ),
    (
        {"name": "t", "responseTimeoutSeconds": 0},
        [
            "responseTimeoutSeconds: must be >= 1, got 0; it is how long a started task may go "
            "without a worker update"
        ],
    ),
    (
        {"name": "t", "timeoutSeconds": 120, "responseTimeoutSeconds": 3600},
        [
            "responseTimeoutSeconds: 3600 exceeds timeoutSeconds 120; make "
            "responseTimeoutSeconds <= timeoutSeconds, or set timeoutSeconds to 0 for no "
            "overall timeout"
        ],
    ),
    (
        {
            "name": "t",
            "timeoutSeconds": 120,
            "responseTimeoutSeconds": 60,
            "totalTimeoutSeconds": 60,
        },
        [
            "totalTimeoutSeconds: 60 is less than timeoutSeconds 120; the budget across all "
            "retries must cover one attempt, raise it or set 0 for no budget"
        ],
    ),
    (
        {"name": "t", "totalTimeoutSeconds": -1},
        ["totalTimeoutSeconds: must be >= 0, got -1; use 0 for no budget"],
    ),
    (
        {"name": "t", "pollTimeoutSeconds": -1},
        ["pollTimeoutSeconds: must be >= 0, got -1; use 0 or null for none"],
    ),
    (
        {"name": "t", "concurrentExecLimit": -1},
        ["concurrentExecLimit: must be >= 0, got -1; use 0 or null for no limit"],
    ),
    (
        {"name": "t", "rateLimitPerFrequency": -1},
        ["rateLimitPerFrequency: must be >= 0, got -1; use 0 for no rate limit"],
    ),
    (
        {"name": "t", "rateLimitPerFrequency": 5, "rateLimitFrequencyInSeconds": 0},
        [
            "rateLimitFrequencyInSeconds: must be >= 1 when rateLimitPerFrequency is set, got "
            "0; it is the rate limit window in seconds"
        ],
    ),
]


@pytest.mark.parametrize(("body", "expected"), TASK_DEF_INVALID)
def test_invalid_task_def_gives_exact_errors(body: dict[str, Any], expected: list[str]) -> None:
    td = codec.convert(body, TaskDef)
    assert [str(e) for e in validate_task_def(td)] == expected
    with pytest.raises(DefinitionError):
        check_task_def(td)


def test_task_def_input_template_expressions_are_parsed() -> None:
    td = TaskDef(name="t", input_template={"a": {"b": "${workflow.input.x"}})
    [error] = validate_task_def(td)
    assert error.path == "inputTemplate.a.b"
    assert error.message == _mapping_error("${workflow.input.x")


def test_task_def_within_limits_is_valid() -> None:
    td = TaskDef(
        name="t", timeout_seconds=120, response_timeout_seconds=120, total_timeout_seconds=600
    )
    assert validate_task_def(td) == []


# --------------------------------------------------------------------------- decoding


def test_decode_workflow_def_returns_the_definition() -> None:
    defn = decode_workflow_def(json.dumps(wf(task("a"))).encode())
    assert defn.tasks[0].task_reference_name == "a"


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        (b'{"name": "x", "tasks": [', [""]),
        (
            b'{"name": "x", "tasks": [{"name": "a", "taskReferenceName": 5}]}',
            ["tasks[0].taskReferenceName"],
        ),
        (
            json.dumps(wf(task("a", "EVENT"), task("a"))).encode(),
            ["tasks[0].sink", "tasks[1].taskReferenceName"],
        ),
    ],
)
def test_decode_workflow_def_raises_with_paths(body: bytes, paths: list[str]) -> None:
    with pytest.raises(DefinitionError) as info:
        decode_workflow_def(body)
    assert [e.path for e in info.value.errors] == paths


def test_decode_workflow_defs_prefixes_each_index() -> None:
    body = json.dumps([wf(task("a")), wf(task("e", "EVENT"))]).encode()
    with pytest.raises(DefinitionError) as info:
        decode_workflow_defs(body)
    assert [e.path for e in info.value.errors] == ["[1].tasks[0].sink"]
    assert [d.name for d in decode_workflow_defs(json.dumps([wf(task("a"))]))] == ["wf"]


def test_decode_task_defs() -> None:
    good = decode_task_defs(b'[{"name": "a"}, {"name": "b", "retryCount": 0}]')
    assert [t.name for t in good] == ["a", "b"]
    with pytest.raises(DefinitionError) as info:
        decode_task_defs(b'[{"name": "a"}, {"name": "b", "retryCount": -1}]')
    assert [str(e) for e in info.value.errors] == [
        "[1].retryCount: must be >= 0, got -1; it is the number of retries after the first attempt"
    ]
    with pytest.raises(DefinitionError) as info:
        decode_task_defs(b"[]")
    assert [str(e) for e in info.value.errors] == [
        "the list is empty; send at least one task definition"
    ]
    assert decode_task_def(b'{"name": "solo"}').name == "solo"
    with pytest.raises(DefinitionError):
        decode_task_def(b'{"name": ""}')


# --------------------------------------------------------------------------- nesting


def _nested_switches(depth: int) -> str:
    body = '{"name": "leaf", "taskReferenceName": "leaf"}'
    for i in range(depth):
        body = (
            f'{{"name": "s", "taskReferenceName": "s{i}", "type": "SWITCH", '
            '"evaluatorType": "value-param", "expression": "k", '
            f'"decisionCases": {{"a": [{body}]}}}}'
        )
    return f'{{"name": "w", "tasks": [{body}]}}'


def test_nesting_up_to_the_limit_is_valid() -> None:
    assert decode_workflow_def(_nested_switches(MAX_NESTING)).name == "w"


def test_nesting_beyond_the_limit_is_one_error() -> None:
    with pytest.raises(DefinitionError) as info:
        decode_workflow_def(_nested_switches(MAX_NESTING + 10))
    [error] = info.value.errors
    assert error.path == "tasks[0]" + ".decisionCases.a[0]" * MAX_NESTING + ".decisionCases.a"
    assert error.message == (
        f"task lists are nested more than {MAX_NESTING} levels deep; flatten the definition "
        "(move deep branches into sub-workflows)"
    )


def test_hostile_nesting_is_a_definition_error_not_a_crash() -> None:
    with pytest.raises(DefinitionError) as info:
        decode_workflow_def(_nested_switches(5000))
    assert [str(e) for e in info.value.errors] == [
        "the JSON is nested too deeply; flatten the document"
    ]
