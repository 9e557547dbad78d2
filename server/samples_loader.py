"""Register the sample definitions shipped in server/samples/ (`podium server --samples`).

Rules: every `*.json` file in the folder is read in name order. A file holds a workflow
definition (an object with `tasks`), a task definition (an object without), or a list
of either. Task definitions are registered before workflows; workflows are upserted.
An invalid sample is an error at startup (the samples ship with Podium and must be
valid); a folder without JSON registers nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec

from core import codec
from core.models import TaskDef, WorkflowDef
from core.validation import check_task_def, check_workflow_def
from server.engine import Engine

log = logging.getLogger("podium.samples")

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def read_samples(folder: Path = SAMPLES_DIR) -> tuple[list[TaskDef], list[WorkflowDef]]:
    """The task and workflow definitions in `folder`'s JSON files.

    Raises:
        DefinitionError: a file is not JSON or not a definition (names the file).
    """
    task_defs: list[TaskDef] = []
    workflow_defs: list[WorkflowDef] = []
    for path in sorted(folder.glob("*.json")):
        data: Any = codec.decode(path.read_bytes(), object, subject=f"sample {path.name}")
        items = data if isinstance(data, list) else [data]
        for item in items:
            if isinstance(item, dict) and "tasks" in item:
                workflow_defs.append(
                    codec.convert(item, WorkflowDef, subject=f"sample {path.name}")
                )
            else:
                task_defs.append(codec.convert(item, TaskDef, subject=f"sample {path.name}"))
    return task_defs, workflow_defs


async def register_samples(engine: Engine, folder: Path = SAMPLES_DIR) -> int:
    """Validate then register every sample definition; returns how many were written."""
    task_defs, workflow_defs = read_samples(folder)
    for td in task_defs:
        check_task_def(td)
    known = {td.name: td for td in task_defs}
    known.update(await engine.metadata.task_defs())
    for wd in workflow_defs:
        check_workflow_def(wd, task_defs=known)
    now = engine.now_ms()
    for td in task_defs:
        td = msgspec.structs.replace(td, create_time=now)
        await engine.store.put_task_def(td.name, codec.encode(td))
    for wd in workflow_defs:
        wd = msgspec.structs.replace(wd, create_time=now)
        await engine.store.put_workflow_def(wd.name, wd.version, codec.encode(wd))
    engine.metadata_changed()
    count = len(task_defs) + len(workflow_defs)
    log.info("registered %d sample definitions from %s", count, folder)
    return count
