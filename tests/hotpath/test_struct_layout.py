"""The msgspec record layout that hotpath/structs.pxd declares for the compiled twins.

Rules: structs.pxd lists every field of Task, Workflow, WorkflowTask and the TaskUpdate /
TaskPolled events in slot order (sorted names); a model change or a msgspec upgrade
that moves a slot must fail here, naming the file to regenerate, rather than corrupt
memory in the compiled decider.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

import msgspec
import pytest

from core.decisions import DeciderEnv, TaskPolled, TaskUpdate
from core.enums import TaskStatus
from core.models import Task, Workflow, WorkflowTask
from hotpath import struct_layout

PXD = Path(__file__).resolve().parents[2] / "hotpath" / "structs.pxd"


def declared_fields(source: str, class_name: str) -> list[str]:
    """The `cdef object` attributes of one `ctypedef class ...<class_name>` block."""
    block = re.search(
        rf"ctypedef class [\w.]+\.{class_name} \[[^\]]*\]:\n((?:        cdef object \w+\n)+)",
        source,
    )
    assert block is not None, f"structs.pxd declares no {class_name}"
    return re.findall(r"cdef object (\w+)", block.group(1))


def c_struct_fields(source: str, c_name: str) -> list[str]:
    """The members of one verbatim C `typedef struct {...} <c_name>;`."""
    block = re.search(
        r"typedef struct \{\n\s+PyObject_HEAD\n((?:\s+PyObject \*\w+;\n)+)\s+\} " + c_name + ";",
        source,
    )
    assert block is not None, f"structs.pxd defines no {c_name}"
    return re.findall(r"PyObject \*(\w+);", block.group(1))


@pytest.mark.parametrize(
    ("cls", "c_name"),
    [
        (Task, "PodiumTask"),
        (Workflow, "PodiumWorkflow"),
        (WorkflowTask, "PodiumWfTask"),
        (TaskUpdate, "PodiumUpdate"),
        (TaskPolled, "PodiumPolled"),
        (DeciderEnv, "PodiumEnv"),
    ],
)
def test_pxd_declares_every_field_in_slot_order(cls: type[msgspec.Struct], c_name: str) -> None:
    source = PXD.read_text()
    expected = struct_layout.slot_order(cls)
    assert declared_fields(source, cls.__name__) == expected, "regenerate hotpath/structs.pxd"
    assert c_struct_fields(source, c_name) == expected, "regenerate hotpath/structs.pxd"


@pytest.mark.parametrize("cls", struct_layout.DECLARED)
def test_live_objects_have_the_declared_layout(cls: type[msgspec.Struct]) -> None:
    assert struct_layout.layout_errors(cls) == []
    struct_layout.verify()


def test_a_moved_slot_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend the fields are laid out in declaration order instead of sorted order.
    monkeypatch.setattr(struct_layout, "slot_order", lambda cls: list(cls.__struct_fields__))
    errors = struct_layout.layout_errors(Task)
    assert errors
    assert all(e.startswith("Task.") for e in errors)
    with pytest.raises(ImportError, match=r"structs\.pxd"):
        struct_layout.verify()


def test_records_are_always_gc_tracked() -> None:
    # Writes through the C structs skip msgspec's __setattr__, whose only extra work is
    # to start GC tracking; the records hold dicts, so msgspec tracks them from the start.
    import gc

    task = Task(
        task_type="t",
        # A plain str on purpose: an enum member is itself GC-tracked, a str is not.
        status=cast(TaskStatus, "SCHEDULED"),
        reference_task_name="r",
        task_id="i",
        workflow_instance_id="w",
    )
    workflow = Workflow(workflow_id="w", workflow_name="n", workflow_version=1)
    assert gc.is_tracked(task)
    assert gc.is_tracked(workflow)
    assert gc.is_tracked(
        msgspec.convert(
            {
                "taskType": "t",
                "status": "SCHEDULED",
                "referenceTaskName": "r",
                "taskId": "i",
                "workflowInstanceId": "w",
            },
            Task,
        )
    )
