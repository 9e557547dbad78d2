"""Workflow <-> stored record: the engine's only encoding of executions.

Rules:
- The body is msgspec msgpack of the whole `Workflow` (tasks included). The store never
  decodes it; index fields (name, status, times, correlation, parent) are copied into the
  `WorkflowRecord` beside it, and `search_text` holds the input and output JSON for
  search's freeText.
- Compactness: each task's `workflowTask` is a copy of a node of the workflow's own
  definition (which the body already carries once). On encode a task whose workflowTask is
  that node (same reference name, equal value) is stored without it; on decode it is
  re-linked from the definition by reference name (a DO_WHILE iteration's `__N` suffix is
  stripped). Tasks whose workflowTask is not in the definition (dynamic forks, DYNAMIC)
  keep their copy. Measured on a 20-task sequential workflow: 16.1 KB instead of 21.0 KB
  (JSON would be 26.9 KB); re-linking also shares one object per node, so decode
  allocates less.
- Fields at their default value are left out of the body (the wire models encode them,
  omit_defaults=False, so the body is written through storage twins of Task and
  Workflow with the same fields, names and defaults and omit_defaults=True). Decoding
  with the models fills them back in, so bodies with and without them both decode to
  equal workflows. Measured on sequential-5 (4 tasks): ~2.3 KB instead of ~5 KB, and
  encoding takes about half the time.
- The definition is not in the body: the record carries its msgpack bytes and a digest
  of them (`definition`, `definition_ref`), and stores keep one copy per digest
  (core/store.py), so thousands of executions of one definition store it once
  (sequential-5: 1.4 KB of a 4.2 KB body). Equal bytes decode to one shared (frozen)
  WorkflowDef object, so loading a workflow does not rebuild its definition or its
  reference-name index. Bodies written before this carry the definition inline
  (`_Body.definition`); they still decode.
- Encoding never mutates the workflow passed in.
- `working_copy` is what a decide may mutate instead of a committed workflow
  (server/engine/workflow_cache.py): new Workflow and Task objects, and new top-level
  maps and lists (input, output, variables, inputData, outputData, ...). Values nested
  deeper are shared: the decider never edits them in place (it builds a new map and
  assigns it), and the cache's verify mode checks that in the test suite. Definitions
  and workflowTasks are frozen and shared.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from core.enums import WORKFLOW_TERMINAL
from core.errors import InternalError
from core.models import UNSET, Task, Workflow, WorkflowDef, WorkflowTask
from core.store import WorkflowRecord

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Workflow)
_def_decoder = msgspec.msgpack.Decoder(WorkflowDef)
_json = msgspec.json.Encoder()
_ITERATION_SUFFIX = re.compile(r"__\d+$")
_CACHE_MAX = 512


class _Body(msgspec.Struct, array_like=True):
    """The stored body: an inline definition (older bodies only), then the workflow
    without it."""

    definition: bytes  # b"": the definition travels beside the body (or there is none)
    workflow: msgspec.Raw
    definition_ref: str = ""  # the digest of the definition it needs ("" = none)


class _Linked(msgspec.Struct):
    """One definition as decoded once: the object, its bytes, its digest, its nodes by
    ref name."""

    definition: WorkflowDef
    encoded: bytes
    ref: str
    index: dict[str, WorkflowTask]


# Definitions are frozen and shared by every workflow decoded from the same bytes (the
# decider's per-definition plan cache benefits too). Keyed by bytes for decoding and by
# object identity for encoding; both bounded.
_by_bytes: dict[bytes, _Linked] = {}
_by_id: dict[int, _Linked] = {}


def _walk(tasks: list[WorkflowTask], into: dict[str, WorkflowTask]) -> None:
    for wt in tasks:
        into.setdefault(wt.task_reference_name, wt)
        for branch in wt.decision_cases.values():
            _walk(branch, into)
        _walk(wt.default_case, into)
        for branch in wt.fork_tasks:
            _walk(branch, into)
        _walk(wt.loop_over, into)


def _remember(definition: WorkflowDef, encoded: bytes) -> _Linked:
    if len(_by_bytes) >= _CACHE_MAX:
        _by_bytes.clear()
        _by_id.clear()
    index: dict[str, WorkflowTask] = {}
    _walk(definition.tasks, index)
    ref = hashlib.blake2b(encoded, digest_size=16).hexdigest()
    linked = _Linked(definition=definition, encoded=encoded, ref=ref, index=index)
    _by_bytes[encoded] = linked
    _by_id[id(definition)] = linked
    return linked


def _linked_for(definition: WorkflowDef) -> _Linked:
    linked = _by_id.get(id(definition))
    if linked is not None and linked.definition is definition:
        return linked
    encoded = _encoder.encode(definition)
    linked = _by_bytes.get(encoded)
    if linked is not None and linked.definition == definition:
        return linked
    return _remember(definition, encoded)


def definition_index(definition: WorkflowDef) -> dict[str, WorkflowTask]:
    """Every WorkflowTask of `definition` (nested ones included) by reference name."""
    return _linked_for(definition).index


def _base_ref(ref: str) -> str:
    return _ITERATION_SUFFIX.sub("", ref)


def _storage_twin(model: type[msgspec.Struct], name: str) -> type[msgspec.Struct]:
    """A Struct with `model`'s fields (order, wire names, defaults) that omits defaults;
    built positionally from `astuple`. Field types are Any: it is only ever encoded."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(model):
        if f.default is not msgspec.NODEFAULT:
            fields.append((f.name, Any, f.default))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, Any, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, Any))
    return msgspec.defstruct(name, fields, rename="camel", omit_defaults=True)


_StoredTask: Any = _storage_twin(Task, "_StoredTask")
_StoredWorkflow: Any = _storage_twin(Workflow, "_StoredWorkflow")
_astuple = msgspec.structs.astuple


def _stored_task(task: Task, slim: bool) -> Any:
    stored = _StoredTask(*_astuple(task))
    if slim:
        stored.workflow_task = UNSET
    return stored


def _stored_workflow(workflow: Workflow, tasks: list[Any], definition: Any) -> Any:
    stored = _StoredWorkflow(*_astuple(workflow))
    stored.tasks = tasks
    stored.workflow_definition = definition
    return stored


def encode_body(workflow: Workflow) -> bytes:
    """The opaque store body of `workflow`, with def-linked workflowTasks and default
    values left out, and without the definition (see `to_record`)."""
    return _encode(workflow)[0]


def _encode(workflow: Workflow) -> tuple[bytes, _Linked | None]:
    definition = workflow.workflow_definition
    if not isinstance(definition, WorkflowDef):
        tasks = [_stored_task(task, False) for task in workflow.tasks]
        rest = _stored_workflow(workflow, tasks, definition)
        body = _encoder.encode(_Body(definition=b"", workflow=msgspec.Raw(_encoder.encode(rest))))
        return body, None
    linked = _linked_for(definition)
    index = linked.index
    slim: list[Any] = []
    for task in workflow.tasks:
        wt = task.workflow_task
        linked_node = False
        if isinstance(wt, WorkflowTask):
            node = index.get(wt.task_reference_name)
            linked_node = node is not None and (node is wt or node == wt)
        slim.append(_stored_task(task, linked_node))
    rest = _stored_workflow(workflow, slim, UNSET)
    raw = msgspec.Raw(_encoder.encode(rest))
    return _encoder.encode(_Body(definition=b"", workflow=raw, definition_ref=linked.ref)), linked


_body_decoder = msgspec.msgpack.Decoder(_Body)


def decode_body(body: bytes, definition: bytes = b"") -> Workflow:
    """Decode a body written by `encode_body` with the definition bytes stored beside it
    (or inline, in older bodies), re-linking workflowTasks to the definition."""
    parts = _body_decoder.decode(body)
    workflow = _decoder.decode(parts.workflow)
    encoded = parts.definition or definition
    if not encoded:
        if parts.definition_ref:
            raise InternalError(
                f"workflow {workflow.workflow_id}: its definition {parts.definition_ref} "
                "was not loaded with it (the store lost it)"
            )
        return workflow
    linked = _by_bytes.get(encoded)
    if linked is None:
        linked = _remember(_def_decoder.decode(encoded), encoded)
    if parts.definition_ref and linked.ref != parts.definition_ref:
        raise InternalError(
            f"workflow {workflow.workflow_id}: loaded with definition {linked.ref}, "
            f"but its body needs {parts.definition_ref}"
        )
    workflow.workflow_definition = linked.definition
    index = linked.index
    for task in workflow.tasks:
        if task.workflow_task is UNSET:
            node = index.get(_base_ref(task.reference_task_name))
            if node is not None:
                task.workflow_task = node
    return workflow


_replace = msgspec.structs.replace


def _task_copy(task: Task) -> Task:
    meta = task.execution_metadata
    if isinstance(meta, dict):
        return _replace(
            task,
            input_data=dict(task.input_data),
            output_data=dict(task.output_data),
            execution_metadata=dict(meta),
        )
    return _replace(task, input_data=dict(task.input_data), output_data=dict(task.output_data))


def working_copy(workflow: Workflow) -> Workflow:
    """A copy of `workflow` a decide may mutate without touching `workflow` (module rules)."""
    return _replace(
        workflow,
        tasks=[_task_copy(task) for task in workflow.tasks],
        input=dict(workflow.input),
        output=dict(workflow.output),
        variables=dict(workflow.variables),
        task_to_domain=dict(workflow.task_to_domain),
        failed_reference_task_names=list(workflow.failed_reference_task_names),
        failed_task_names=list(workflow.failed_task_names),
        history=list(workflow.history),
    )


def search_text(workflow: Workflow) -> str:
    """What freeText search matches: the input and output JSON."""
    return _json.encode([workflow.input, workflow.output]).decode()


def _opt(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def to_record(workflow: Workflow, *, version: int = 0) -> WorkflowRecord:
    """The stored record of `workflow` (`version` is the one it was loaded at)."""
    body, linked = _encode(workflow)
    return WorkflowRecord(
        workflow_id=workflow.workflow_id,
        workflow_name=workflow.workflow_name,
        workflow_version=workflow.workflow_version,
        status=workflow.status.value,
        create_time=workflow.create_time,
        update_time=workflow.update_time,
        end_time=workflow.end_time if workflow.status in WORKFLOW_TERMINAL else 0,
        correlation_id=_opt(workflow.correlation_id),
        parent_workflow_id=_opt(workflow.parent_workflow_id),
        search_text=search_text(workflow),
        body=body,
        definition_ref="" if linked is None else linked.ref,
        definition=b"" if linked is None else linked.encoded,
        version=version,
    )


def from_record(record: WorkflowRecord) -> Workflow:
    """Decode a record's body. Raises InternalError-worthy msgspec errors on a corrupt body."""
    return decode_body(record.body, record.definition)
