"""`podium validate` as a user runs it: a real subprocess, its output and exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXPECTED = (
    'expected a workflow definition (an object with "name" and "tasks"), a list of them, '
    'or a StartWorkflowRequest with an inline "workflowDef"'
)
GOOD = {
    "name": "greet",
    "schemaVersion": 2,
    "tasks": [
        {
            "name": "hello",
            "taskReferenceName": "hello",
            "inputParameters": {"n": "${workflow.input.n}"},
        },
        {"name": "done", "taskReferenceName": "done", "type": "NOOP"},
    ],
}
BAD = {
    "name": "broken",
    "schemaVersion": 2,
    "tasks": [
        {"name": "e", "taskReferenceName": "e", "type": "EVENT"},
        {"name": "x", "taskReferenceName": "e", "inputParameters": {"v": "${ghost.output}"}},
    ],
}


def bad_lines(prefix: str = "") -> list[str]:
    """The problems of BAD, with every path (also the one in a message) under `prefix`."""
    return [
        f'{prefix}tasks[0].sink: an EVENT task needs a sink; set "sink", e.g. "conductor" or '
        '"sqs:<queue name>"',
        f"{prefix}tasks[1].taskReferenceName: duplicate reference 'e' (first used at "
        f"{prefix}tasks[0]); reference names must be unique across the definition",
        f"{prefix}tasks[1].inputParameters.v: '${{ghost.output}}' refers to 'ghost', which is "
        "not a task reference in this workflow; use the taskReferenceName of a task in the "
        "definition, or workflow.input / workflow.variables",
    ]


def _command() -> list[str]:
    script = Path(sys.executable).with_name("podium")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server.cli"]


def podium_validate(cwd: Path, *args: str) -> tuple[int, list[str], str]:
    """Run `podium validate ARGS` in `cwd`; (exit status, stdout lines, stderr)."""
    done = subprocess.run(
        [*_command(), "validate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )
    return done.returncode, done.stdout.splitlines(), done.stderr


def write(path: Path, content: Any) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path.name


def test_valid_file_prints_ok_and_exits_0(tmp_path: Path) -> None:
    name = write(tmp_path / "good.json", GOOD)
    assert podium_validate(tmp_path, name) == (0, ["good.json: ok"], "")


def test_every_problem_is_printed_and_exit_is_1(tmp_path: Path) -> None:
    good = write(tmp_path / "good.json", GOOD)
    bad = write(tmp_path / "bad.json", BAD)
    code, lines, _ = podium_validate(tmp_path, good, bad)
    assert code == 1
    assert lines == ["good.json: ok"] + [f"bad.json: {line}" for line in bad_lines()]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"name": "x", "tasks": [\n',
            f"not valid JSON (Expecting value at line 2, column 1); {EXPECTED}",
        ),
        ("", f"not valid JSON (Expecting value at line 1, column 1); {EXPECTED}"),
        ('"just a string"', f"a JSON string, not an object; {EXPECTED}"),
        ("42", f"a JSON number, not an object; {EXPECTED}"),
        ("[]", f"an empty JSON list; {EXPECTED}"),
        ('{"foo": 1, "bar": 2}', f"a JSON object with keys bar, foo; {EXPECTED}"),
        (
            json.dumps([{"name": "t1", "retryCount": 1}, {"name": "t2", "timeoutPolicy": "RETRY"}]),
            f"a list of task definitions (TaskDef) (2 items), not workflow definitions; {EXPECTED}",
        ),
        (
            json.dumps({"name": "t1", "retryCount": 1, "responseTimeoutSeconds": 10}),
            f"this looks like a task definition (TaskDef), not a workflow definition; {EXPECTED}",
        ),
        (
            json.dumps({"name": "h", "event": "sqs:q", "actions": []}),
            "this looks like an event handler (it has event and actions), not a workflow "
            f"definition; {EXPECTED}",
        ),
        (
            json.dumps({"workflowId": "1", "status": "RUNNING", "tasks": []}),
            "this looks like a workflow execution (it has workflowId and status), not a "
            f"workflow definition; {EXPECTED}",
        ),
        (
            json.dumps({"name": "a", "taskReferenceName": "a"}),
            'this looks like a single workflow task; put it in the "tasks" list of a workflow '
            f"definition, not a workflow definition; {EXPECTED}",
        ),
        (
            json.dumps({"name": "greet", "input": {"n": 1}}),
            "this looks like a StartWorkflowRequest without an inline workflowDef (it starts a "
            f"registered workflow), not a workflow definition; {EXPECTED}",
        ),
        (
            json.dumps({"name": "greet", "workflowDef": None}),
            "a StartWorkflowRequest for 'greet' whose workflowDef is null, so there is no "
            f"definition to check; {EXPECTED}",
        ),
        (
            json.dumps(
                {
                    "name": "w",
                    "tasks": [{"name": "a", "taskReferenceName": "a", "startDelay": "soon"}],
                }
            ),
            "tasks[0].startDelay: Expected `int`, got `str`",
        ),
        (json.dumps({"name": "w", "tasks": "none"}), "tasks: Expected `array`, got `str`"),
    ],
)
def test_files_that_are_not_workflows_get_one_clear_line(
    tmp_path: Path, content: str, message: str
) -> None:
    name = write(tmp_path / "input.json", content)
    assert podium_validate(tmp_path, name) == (1, [f"input.json: {message}"], "")


def test_unreadable_paths(tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    (tmp_path / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    code, lines, _ = podium_validate(tmp_path, "missing.json", "defs", "latin1.json")
    assert code == 1
    assert lines == [
        "missing.json: no such file",
        "defs: is a directory; name the JSON files inside it",
        f"latin1.json: not valid JSON (the file is not UTF-8 text); {EXPECTED}",
    ]


def test_list_of_workflow_defs_reports_by_index(tmp_path: Path) -> None:
    name = write(tmp_path / "many.json", [GOOD, BAD, "oops"])
    code, lines, _ = podium_validate(tmp_path, name)
    assert code == 1
    assert lines == [f"many.json: {line}" for line in bad_lines("[1].")] + [
        f"many.json: [2]: a JSON string, not an object; {EXPECTED}"
    ]
    only_good = write(tmp_path / "good_list.json", [GOOD, GOOD | {"version": 2}])
    assert podium_validate(tmp_path, only_good) == (0, ["good_list.json: ok"], "")


def test_start_request_inline_definition_is_validated(tmp_path: Path) -> None:
    good = write(tmp_path / "start_ok.json", {"name": "greet", "input": {}, "workflowDef": GOOD})
    bad = write(tmp_path / "start_bad.json", {"name": "broken", "workflowDef": BAD})
    code, lines, _ = podium_validate(tmp_path, good, bad)
    assert code == 1
    assert lines == ["start_ok.json: ok"] + [
        f"start_bad.json: {line}" for line in bad_lines("workflowDef.")
    ]


def test_task_defs_option_supplies_registered_templates(tmp_path: Path) -> None:
    http = write(
        tmp_path / "http.json",
        {"name": "call", "tasks": [{"name": "fetch", "taskReferenceName": "f", "type": "HTTP"}]},
    )
    defs = write(
        tmp_path / "taskdefs.json",
        [
            {
                "name": "fetch",
                "inputTemplate": {"http_request": {"uri": "http://x", "method": "GET"}},
            }
        ],
    )
    code, lines, _ = podium_validate(tmp_path, http)
    assert code == 1
    assert lines[0].startswith("http.json: tasks[0].inputParameters.http_request: an HTTP task")
    assert podium_validate(tmp_path, "--task-defs", defs, http) == (0, ["http.json: ok"], "")
    bad_defs = write(
        tmp_path / "bad_defs.json",
        [{"name": "fetch", "retryCount": -1, "inputTemplate": {"http_request": {}}}],
    )
    code, lines, _ = podium_validate(tmp_path, "--task-defs", bad_defs, http)
    assert code == 1
    assert lines == [
        "bad_defs.json: [0].retryCount: must be >= 0, got -1; it is the number of retries "
        "after the first attempt",
        "http.json: ok",
    ]


def test_no_file_is_a_usage_error(tmp_path: Path) -> None:
    code, lines, err = podium_validate(tmp_path)
    assert code == 2
    assert lines == []
    assert "the following arguments are required: FILE" in err


def test_conductor_samples(shared_dir: Path, tmp_path: Path) -> None:
    root = shared_dir / "conductor-samples"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.json"))
    code, lines, _ = podium_validate(root, *files)
    assert code == 1  # the TaskDef list and the event handler are not workflows
    not_ok = {line.split(": ", 1)[0] for line in lines if not line.endswith(": ok")}
    assert not_ok == {
        "kitchensink/kitchensink_taskdefs.json",
        "workflows/sqs-complete-wait-event-handler.json",
    }
    assert len(lines) == len(files)


def test_validate_does_not_load_the_server(tmp_path: Path) -> None:
    name = write(tmp_path / "good.json", GOOD)
    probe = (
        "import sys; from server.cli import main; code = main(['validate', sys.argv[1]]); "
        "print(sorted(m for m in ('trio', 'h11', 'redis', 'asyncpg') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == ["good.json: ok", "[]"]


def test_absurdly_nested_json_is_one_line(tmp_path: Path) -> None:
    name = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    assert podium_validate(tmp_path, name) == (
        1,
        ["deep.json: the JSON is nested too deeply to be a workflow definition; flatten it"],
        "",
    )
