"""`podium validate FILE...`: check workflow definitions offline, with the server's rules.

Rules:
- Accepts a workflow definition, a JSON list of them, or a StartWorkflowRequest with an
  inline `workflowDef` (the inline definition is what gets validated).
- Prints `FILE: ok` for a valid file, else one line per problem, `FILE: <path>: <message>`
  (paths as in the server's 400 answers). A file that cannot be read, is not JSON, or is
  JSON of another shape (task definitions, an event handler, ...) gets one line saying what
  it looks like and what was expected.
- Exit status 0 when every file is valid, 1 otherwise (2 for bad usage, from argparse).
- Imports only core: validating a file never loads the server.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core import codec
from core.errors import DefinitionError
from core.models import StartWorkflowRequest, TaskDef, WorkflowDef
from core.validation import join_path, validate_task_def, validate_workflow_def
from server.cli import COMMANDS

EXPECTED = (
    'expected a workflow definition (an object with "name" and "tasks"), a list of them, '
    'or a StartWorkflowRequest with an inline "workflowDef"'
)

# Keys only a WorkflowDef has: an object with one of them is judged as a workflow.
_WORKFLOW_KEYS = frozenset(
    {
        "tasks",
        "schemaVersion",
        "outputParameters",
        "failureWorkflow",
        "restartable",
        "workflowStatusListenerEnabled",
        "variables",
    }
)
# Keys that mark a task definition (TaskDef) rather than a workflow.
_TASK_DEF_KEYS = frozenset(
    {
        "retryCount",
        "retryLogic",
        "retryDelaySeconds",
        "responseTimeoutSeconds",
        "timeoutPolicy",
        "pollTimeoutSeconds",
        "concurrentExecLimit",
        "inputKeys",
        "outputKeys",
        "rateLimitPerFrequency",
        "backoffScaleFactor",
        "totalTimeoutSeconds",
    }
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSON files to check")
    parser.add_argument(
        "--task-defs",
        metavar="FILE",
        help="a JSON list of TaskDefs to treat as registered (rules such as an HTTP task "
        "whose TaskDef inputTemplate supplies http_request consult it)",
    )


def run(args: argparse.Namespace) -> int:
    """Validate every file named on the command line; 0 if all are valid, else 1."""
    failed = False
    task_defs: dict[str, TaskDef] = {}
    if args.task_defs:
        problems = _load_task_defs(Path(args.task_defs), task_defs)
        for line in problems:
            print(f"{args.task_defs}: {line}")
        failed = bool(problems)
    for name in args.files:
        problems = check_file(Path(name), task_defs)
        for line in problems or ["ok"]:
            print(f"{name}: {line}")
        failed = failed or bool(problems)
    return 1 if failed else 0


def check_file(path: Path, task_defs: Mapping[str, TaskDef]) -> list[str]:
    """The problems of one file as output lines (without the file name); empty if valid."""
    doc, problem = _read_json(path)
    if problem:
        return [problem]
    if isinstance(doc, list):
        return _check_list(doc, task_defs)
    if isinstance(doc, dict):
        return _check_object(doc, "", task_defs)
    return [f"a JSON {_json_kind(doc)}, not an object; {EXPECTED}"]


def _read_json(path: Path) -> tuple[Any, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "no such file"
    except IsADirectoryError:
        return None, "is a directory; name the JSON files inside it"
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror})"
    try:
        return json.loads(data), ""
    except json.JSONDecodeError as exc:
        return None, (
            f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); {EXPECTED}"
        )
    except UnicodeDecodeError:
        return None, f"not valid JSON (the file is not UTF-8 text); {EXPECTED}"
    except RecursionError:
        return None, "the JSON is nested too deeply to be a workflow definition; flatten it"


def _check_list(doc: list[Any], task_defs: Mapping[str, TaskDef]) -> list[str]:
    if not doc:
        return [f"an empty JSON list; {EXPECTED}"]
    kinds = {_looks_like(item) for item in doc}
    if len(kinds) == 1 and (kind := kinds.pop()) is not None:
        return [
            f"a list of {_KINDS[kind][1]} ({len(doc)} items), not workflow definitions; {EXPECTED}"
        ]
    lines: list[str] = []
    for i, item in enumerate(doc):
        if isinstance(item, dict):
            lines.extend(_check_object(item, f"[{i}]", task_defs))
        else:
            lines.append(f"[{i}]: a JSON {_json_kind(item)}, not an object; {EXPECTED}")
    return lines


def _check_object(doc: dict[str, Any], path: str, task_defs: Mapping[str, TaskDef]) -> list[str]:
    where = f"{path}: " if path else ""
    kind = _looks_like(doc)
    if kind is not None:
        return [f"{where}this looks like {_KINDS[kind][0]}, not a workflow definition; {EXPECTED}"]
    if "workflowDef" in doc and "tasks" not in doc:
        return _check_start_request(doc, path, task_defs)
    if "tasks" not in doc and "name" not in doc and not (_WORKFLOW_KEYS & doc.keys()):
        keys = ", ".join(sorted(doc)[:6]) or "none"
        return [f"{where}a JSON object with keys {keys}; {EXPECTED}"]
    try:
        defn = codec.convert(doc, WorkflowDef, subject="workflow definition", path=path)
    except DefinitionError as exc:
        return [str(e) for e in exc.errors]
    return [str(e) for e in validate_workflow_def(defn, task_defs=task_defs, path=path)]


def _check_start_request(
    doc: dict[str, Any], path: str, task_defs: Mapping[str, TaskDef]
) -> list[str]:
    try:
        request = codec.convert(doc, StartWorkflowRequest, subject="start request", path=path)
    except DefinitionError as exc:
        return [str(e) for e in exc.errors]
    if not isinstance(request.workflow_def, WorkflowDef):
        where = f"{path}: " if path else ""
        return [
            f"{where}a StartWorkflowRequest for '{request.name}' whose workflowDef is null, "
            f"so there is no definition to check; {EXPECTED}"
        ]
    def_path = join_path(path, "workflowDef")
    return [
        str(e)
        for e in validate_workflow_def(request.workflow_def, task_defs=task_defs, path=def_path)
    ]


def _looks_like(doc: object) -> str | None:
    """What a non-workflow JSON object is (a key of _KINDS), or None."""
    if not isinstance(doc, dict):
        return None
    if "workflowId" in doc and "status" in doc:
        return "workflow execution"
    if "event" in doc and "actions" in doc:
        return "event handler"
    if "taskReferenceName" in doc and "tasks" not in doc:
        return "workflow task"
    if "tasks" in doc or "workflowDef" in doc or _WORKFLOW_KEYS & doc.keys():
        return None
    if "name" in doc and _TASK_DEF_KEYS & doc.keys():
        return "task definition"
    if "name" in doc and _START_REQUEST_KEYS & doc.keys():
        return "start request"
    return None


# kind -> (one, many): how the one-line messages describe what a file holds.
_KINDS = {
    "workflow execution": ("a workflow execution (it has workflowId and status)", "executions"),
    "event handler": ("an event handler (it has event and actions)", "event handlers"),
    "workflow task": (
        'a single workflow task; put it in the "tasks" list of a workflow definition',
        "workflow tasks",
    ),
    "task definition": ("a task definition (TaskDef)", "task definitions (TaskDef)"),
    "start request": (
        "a StartWorkflowRequest without an inline workflowDef (it starts a registered workflow)",
        "StartWorkflowRequests without an inline workflowDef",
    ),
}
_START_REQUEST_KEYS = frozenset({"input", "correlationId", "taskToDomain", "priority"})


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def _load_task_defs(path: Path, into: dict[str, TaskDef]) -> list[str]:
    doc, problem = _read_json(path)
    if problem:
        return [problem]
    items = doc if isinstance(doc, list) else [doc]
    lines: list[str] = []
    for i, item in enumerate(items):
        item_path = f"[{i}]" if isinstance(doc, list) else ""
        try:
            td = codec.convert(item, TaskDef, subject="task definition", path=item_path)
        except DefinitionError as exc:
            lines.extend(str(e) for e in exc.errors)
            continue
        lines.extend(str(e) for e in validate_task_def(td, path=item_path))
        into[td.name] = td
    return lines


COMMANDS["validate"] = (
    "check workflow definition files (JSON) and print every problem",
    add_arguments,
    run,
)
