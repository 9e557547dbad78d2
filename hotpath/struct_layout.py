"""Checks the memory layout the compiled twins assume for msgspec records.

Rules: hotpath/structs.pxd declares Task, Workflow, WorkflowTask and the TaskUpdate and
TaskPolled events and DeciderEnv as C structs whose object slots follow the object header in the
sorted order of the field names (how msgspec lays them out); the compiled twins then
read and write those fields with one load or store. `verify()` proves that assumption
on live objects before any compiled code touches one: the compiled rows twin calls it
when imported, and it raises ImportError, naming the fix, if a msgspec upgrade or a
model change broke it. Pure: it only reads the memory of objects it creates.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import msgspec

from core.decisions import DeciderEnv, TaskPolled, TaskUpdate
from core.enums import TaskResultStatus, TaskStatus
from core.models import Task, Workflow, WorkflowTask

# The record types structs.pxd declares, by the name Cython imports them under.
DECLARED: tuple[type[msgspec.Struct], ...] = (
    Task,
    Workflow,
    WorkflowTask,
    TaskUpdate,
    TaskPolled,
    DeciderEnv,
)
_SAMPLES: dict[type[msgspec.Struct], Callable[[], msgspec.Struct]] = {
    Task: lambda: Task(
        task_type="",
        status=TaskStatus.SCHEDULED,
        reference_task_name="",
        task_id="",
        workflow_instance_id="",
    ),
    Workflow: lambda: Workflow(workflow_id="", workflow_name="", workflow_version=1),
    WorkflowTask: lambda: WorkflowTask(name="", task_reference_name=""),
    TaskUpdate: lambda: TaskUpdate(task_id="", status=TaskResultStatus.COMPLETED),
    TaskPolled: lambda: TaskPolled(task_id=""),
    DeciderEnv: lambda: DeciderEnv(),
}
_HEADER = object.__basicsize__
_SLOT = ctypes.sizeof(ctypes.c_void_p)


def slot_order(cls: type[msgspec.Struct]) -> list[str]:
    """The fields of `cls` in the order structs.pxd must declare them."""
    return sorted(cls.__struct_fields__)


def layout_errors(cls: type[msgspec.Struct]) -> list[str]:
    """Every way an instance of `cls` differs from the declared layout (empty = none)."""
    names = slot_order(cls)
    errors: list[str] = []
    if cls.__basicsize__ != _HEADER + _SLOT * len(names):
        errors.append(f"{cls.__name__}: basic size {cls.__basicsize__}, expected header + slots")
        return errors
    # Every slot of a minimal instance is then set to its own marker object.
    sample = _SAMPLES[cls]()
    markers = [object() for _ in names]
    for name, marker in zip(names, markers, strict=True):
        msgspec.structs.force_setattr(sample, name, marker)
    base = id(sample) + _HEADER
    for i, (name, marker) in enumerate(zip(names, markers, strict=True)):
        if ctypes.c_void_p.from_address(base + i * _SLOT).value != id(marker):
            errors.append(f"{cls.__name__}.{name} is not slot {i}")
    return errors


def verify() -> None:
    """Raise ImportError if any declared record's layout is not the one assumed."""
    errors = [e for cls in DECLARED for e in layout_errors(cls)]
    if errors:
        raise ImportError(
            "hotpath/structs.pxd no longer matches the msgspec record layout ("
            + "; ".join(errors[:5])
            + "): regenerate its field lists from core/models and run `make build`"
        )
