"""Podium's own sample definitions (the `podium_kitchensink` tour), shipped as package data.

Rules: the definitions live in this package's `*.json` files and are read with
importlib.resources, so they work from a wheel or a zip as well as from a checkout. A
file holds a workflow definition (an object with `tasks`), a task definition (an object
without), or a list of either. Reading never touches a server or the network; the
samples are written for Podium (not copied from Conductor) and must pass
`core.validation`, which the tests check.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from core import codec
from core.models import TaskDef, WorkflowDef

__all__ = ["KITCHENSINK", "SUB_WORKFLOW", "load_samples"]

#: The workflow that touches every operator, and the sub-workflow its fork branches run.
KITCHENSINK = "podium_kitchensink"
SUB_WORKFLOW = "podium_ks_sub"


def load_samples() -> tuple[list[TaskDef], list[WorkflowDef]]:
    """Read every sample definition in this package.

    Returns:
        (task definitions, workflow definitions), each in file-name order.

    Raises:
        core.errors.DefinitionError: a sample file is not valid JSON or not a definition
            (the message names the file and the field).
    """
    task_defs: list[TaskDef] = []
    workflow_defs: list[WorkflowDef] = []
    files = sorted(
        (f for f in resources.files(__name__).iterdir() if f.name.endswith(".json")),
        key=lambda f: f.name,
    )
    for file in files:
        subject = f"sample {file.name}"
        data: Any = codec.decode(file.read_bytes(), object, subject=subject)
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and "tasks" in item:
                workflow_defs.append(codec.convert(item, WorkflowDef, subject=subject))
            else:
                task_defs.append(codec.convert(item, TaskDef, subject=subject))
    return task_defs, workflow_defs
