"""Podium's sample definitions: they load from package data and pass core.validation."""

from __future__ import annotations

from collections.abc import Iterator

from core.models import WorkflowTask
from core.validation import validate_task_def, validate_workflow_def
from server.samples import KITCHENSINK, SUB_WORKFLOW, load_samples

# Every operator the kitchensink promises to touch.
OPERATORS = {
    "SIMPLE",
    "EVENT",
    "DYNAMIC",
    "SWITCH",
    "DECISION",
    "FORK_JOIN_DYNAMIC",
    "JOIN",
    "FORK_JOIN",
    "SUB_WORKFLOW",
    "DO_WHILE",
    "INLINE",
    "JSON_JQ_TRANSFORM",
    "SET_VARIABLE",
    "WAIT",
    "HTTP",
    "TERMINATE",
    "NOOP",
}


def _walk(tasks: list[WorkflowTask]) -> Iterator[WorkflowTask]:
    for task in tasks:
        yield task
        for branch in task.decision_cases.values():
            yield from _walk(branch)
        yield from _walk(task.default_case)
        for fork in task.fork_tasks:
            yield from _walk(fork)
        yield from _walk(task.loop_over)


def test_samples_load_and_validate() -> None:
    task_defs, workflow_defs = load_samples()
    assert {w.name for w in workflow_defs} == {KITCHENSINK, SUB_WORKFLOW}
    known = {td.name: td for td in task_defs}
    assert len(known) == len(task_defs) == 8
    for td in task_defs:
        assert validate_task_def(td) == []
    for wd in workflow_defs:
        assert validate_workflow_def(wd, task_defs=known) == [], wd.name


def test_kitchensink_touches_every_operator() -> None:
    _, workflow_defs = load_samples()
    kitchensink = next(w for w in workflow_defs if w.name == KITCHENSINK)
    tasks = list(_walk(kitchensink.tasks))
    assert {t.type for t in tasks} == OPERATORS
    # Every worker task type has a task definition and a built-in worker.
    from client.sample_workers import SAMPLE_WORKERS

    task_defs, _ = load_samples()
    worker_types = {w.task_definition_name for w in SAMPLE_WORKERS}
    simple_types = {t.name for t in tasks if t.type == "SIMPLE"}
    sub = next(w for w in workflow_defs if w.name == SUB_WORKFLOW)
    simple_types |= {t.name for t in _walk(sub.tasks) if t.type == "SIMPLE"}
    dynamic_targets = {"podium_ks_classify", "podium_ks_square"}
    assert worker_types == simple_types | dynamic_targets
    assert worker_types <= {td.name for td in task_defs}


def test_http_task_queries_podiums_search_at_the_input_server() -> None:
    _, workflow_defs = load_samples()
    kitchensink = next(w for w in workflow_defs if w.name == KITCHENSINK)
    [http] = [t for t in _walk(kitchensink.tasks) if t.type == "HTTP"]
    uri = http.input_parameters["http_request"]["uri"]
    assert uri.startswith("${workflow.input.serverUrl}/api/workflow/search?query=")
    assert kitchensink.input_template["serverUrl"] == "http://127.0.0.1:8080"
