"""Creating workflows: definition lookup and validation, input defaults, idempotency.

Rules: a new workflow is decided (StartWorkflow) and stored in one create-commit
(expected version 0), so a failed start leaves nothing behind; an id that exists
already makes `create` return None (idempotent children, failure workflows, keyed
starts), and the caller decides what that means.
"""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING

import msgspec

from core.decisions import StartWorkflow
from core.enums import WORKFLOW_TERMINAL, IdempotencyStrategy, WorkflowStatus
from core.errors import BadRequest, Conflict, NotFound
from core.models import UNSET, StartWorkflowRequest, Workflow, WorkflowDef
from core.validation import check_workflow_def
from server.engine.executor import Outcome
from server.engine.takers import HandToWaiting

if TYPE_CHECKING:
    from server.engine.engine import Engine

# Namespace of the workflow ids derived from (workflow name, idempotencyKey).
_IDEMPOTENCY_NS = uuid.UUID("6f1c2a52-8f2e-4b5e-9c55-2d4b8a1e7c10")


def idempotent_id(name: str, key: str) -> str:
    """The workflow id a start with this name and idempotencyKey always gets."""
    return str(uuid.uuid5(_IDEMPOTENCY_NS, f"{name}\n{key}"))


async def existing_for_key(engine: Engine, workflow_id: str, request: StartWorkflowRequest) -> str:
    """A workflow with this idempotency key exists: apply idempotencyStrategy."""
    strategy = request.idempotency_strategy
    strategy = strategy.upper() if isinstance(strategy, str) and strategy else "FAIL"
    if strategy not in {s.value for s in IdempotencyStrategy}:
        allowed = ", ".join(s.value for s in IdempotencyStrategy)
        raise BadRequest(f"idempotencyStrategy: {strategy!r} is not one of {allowed}")
    if strategy == IdempotencyStrategy.RETURN_EXISTING.value:
        return workflow_id
    existing = await engine.get_workflow(workflow_id, include_tasks=False)
    if strategy == IdempotencyStrategy.FAIL_ON_RUNNING.value and (
        existing.status in WORKFLOW_TERMINAL
    ):
        # The keyed id is taken by a finished run: this one gets a fresh id.
        fresh = msgspec.structs.replace(request, idempotency_key=UNSET)
        return await engine.start_workflow(fresh)
    raise Conflict(
        f"Workflow with idempotencyKey '{request.idempotency_key}' already exists: "
        f"{workflow_id} ({existing.status.value}); use idempotencyStrategy "
        "RETURN_EXISTING to get its id instead"
    )


async def resolve_def(engine: Engine, request: StartWorkflowRequest) -> WorkflowDef:
    if isinstance(request.workflow_def, WorkflowDef):
        # An ephemeral definition was never checked by the metadata API: check it here.
        check_workflow_def(
            request.workflow_def,
            task_defs=await engine.metadata.task_defs(),
            path="workflowDef",
        )
        return request.workflow_def
    version = request.version if isinstance(request.version, int) else None
    definition = await engine.metadata.workflow_def(request.name, version)
    if definition is None:
        shown = f", version={version}" if version is not None else ""
        raise NotFound(f"No such workflow defined. name={request.name}{shown}")
    return definition


async def create(
    engine: Engine,
    request: StartWorkflowRequest,
    *,
    workflow_id: str | None,
    parent_workflow_id: str | None,
    parent_workflow_task_id: str | None,
) -> Outcome | None:
    if not request.name and not isinstance(request.workflow_def, WorkflowDef):
        raise BadRequest("name: the workflow name is required")
    if request.input is None:
        raise BadRequest("input: must be a JSON object ({} for none), not null")
    priority = request.priority or 0
    if not 0 <= priority <= 99:
        raise BadRequest(f"priority: must be between 0 and 99, got {priority}")
    definition = await resolve_def(engine, request)
    wf_input = dict(request.input)
    for key, value in definition.input_template.items():
        if key not in wf_input:
            wf_input[key] = copy.deepcopy(value)
    now = engine.now_ms()
    workflow = Workflow(
        workflow_id=workflow_id or str(uuid.uuid4()),
        workflow_name=definition.name,
        workflow_version=definition.version,
        status=WorkflowStatus.RUNNING,
        create_time=now,
        update_time=now,
        start_time=now,
        created_by=request.created_by,
        owner_app=definition.owner_app,
        parent_workflow_id=parent_workflow_id or UNSET,
        parent_workflow_task_id=parent_workflow_task_id or UNSET,
        input=wf_input,
        correlation_id=request.correlation_id,
        task_to_domain=dict(request.task_to_domain or {}),
        workflow_definition=definition,
        priority=priority,
        variables=copy.deepcopy(dict(definition.variables)),
        idempotency_key=request.idempotency_key,
    )
    hand = HandToWaiting(engine)
    outcome = None
    try:
        outcome = await engine.executor.create(workflow, [StartWorkflow()], then=hand)
    finally:
        hand.settle(outcome)
    return outcome
