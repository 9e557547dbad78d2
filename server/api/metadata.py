"""`/api/metadata`: task definitions and workflow definitions (spec 1.1).

Rules:
- Every definition is decoded and validated in full before anything is written; a list
  with one bad entry writes nothing (400 naming `[i].field`).
- Task definitions: POST is an upsert of a list (no 409), PUT updates one that exists
  (404 otherwise) and keeps its createTime/createdBy.
- Workflow definitions: POST registers one and answers 409 if (name, version) exists,
  unless `overwrite=true`; PUT upserts a list and answers a BulkResponse (current
  Conductor). Overwriting keeps the original createTime and sets updateTime.
- After a write the engine's definition cache is dropped so the next start sees it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import codec
from core.errors import Conflict, NotFound
from core.models import BulkResponse, TaskDef, WorkflowDef
from core.validation import (
    check_workflow_def,
    decode_task_def,
    decode_task_defs,
    decode_workflow_defs,
)
from server.api import wire
from server.api.context import ApiContext, check_version, optional_int, path_int, path_str
from server.http import QueryParam, Request, Response, Router

TAGS = ("metadata",)


class WorkflowDefSummary(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """One entry of `names-and-versions` (null times omitted, as Conductor does)."""

    name: str
    version: int
    create_time: int | None = None
    update_time: int | None = None


def _time(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def register(router: Router, ctx: ApiContext) -> None:
    """Add the metadata routes to `router`."""
    engine = ctx.engine
    store = engine.store

    async def _stored_task_def(name: str) -> TaskDef | None:
        body = await store.get_task_def(name)
        return None if body is None else codec.decode(body, TaskDef, subject="stored task def")

    async def _all_workflow_defs() -> list[WorkflowDef]:
        bodies = await store.list_workflow_defs()
        defs = [codec.decode(b, WorkflowDef, subject="stored workflow def") for b in bodies]
        defs.sort(key=lambda d: (d.name, d.version))
        return defs

    async def _put_workflow_def(definition: WorkflowDef, existing: bytes | None) -> None:
        now = engine.now_ms()
        if existing is not None:
            old = codec.decode(existing, WorkflowDef, subject="stored workflow def")
            definition = msgspec.structs.replace(
                definition,
                create_time=old.create_time if _time(old.create_time) else now,
                created_by=old.created_by,
                update_time=now,
            )
        elif not _time(definition.create_time):
            definition = msgspec.structs.replace(definition, create_time=now)
        await store.put_workflow_def(definition.name, definition.version, codec.encode(definition))

    # ------------------------------------------------------------------ task defs

    async def register_task_defs(request: Request) -> Response:
        defs = decode_task_defs(request.body)
        now = engine.now_ms()
        for td in defs:
            if not _time(td.create_time):
                td = msgspec.structs.replace(td, create_time=now)
            await store.put_task_def(td.name, codec.encode(td))
        engine.metadata_changed()
        return Response.empty()

    async def update_task_def(request: Request) -> Response:
        td = decode_task_def(request.body)
        old = await _stored_task_def(td.name)
        if old is None:
            raise NotFound(f"No such taskType found by name: {td.name}")
        td = msgspec.structs.replace(
            td,
            create_time=old.create_time,
            created_by=old.created_by,
            update_time=engine.now_ms(),
        )
        await store.put_task_def(td.name, codec.encode(td))
        engine.metadata_changed()
        return Response.empty()

    async def get_task_defs(request: Request) -> Response:
        bodies = await store.list_task_defs()
        defs = [codec.decode(b, TaskDef, subject="stored task def") for b in bodies]
        defs.sort(key=lambda d: d.name)
        return wire.json(defs)

    async def get_task_def(request: Request) -> Response:
        name = path_str(request, "tasktype")
        td = await _stored_task_def(name)
        if td is None:
            raise NotFound(f"No such taskType found by name: {name}")
        return wire.json(td)

    async def delete_task_def(request: Request) -> Response:
        name = path_str(request, "tasktype")
        if not await store.delete_task_def(name):
            raise NotFound(f"No such taskType found by name: {name}")
        engine.metadata_changed()
        return Response.empty()

    # ------------------------------------------------------------------ workflow defs

    async def register_workflow_def(request: Request) -> Response:
        overwrite = request.query_bool("overwrite", False)
        definition = codec.decode(request.body, WorkflowDef, subject="workflow definition")
        check_version(definition.version, "version")
        check_workflow_def(definition, task_defs=await engine.metadata.task_defs())
        existing = await store.get_workflow_def(definition.name, definition.version)
        if existing is not None and not overwrite:
            raise Conflict(
                f"Workflow with {definition.name}.{definition.version} already exists! "
                "Use overwrite=true or PUT /api/metadata/workflow to replace it."
            )
        await _put_workflow_def(definition, existing)
        engine.metadata_changed()
        return Response.empty()

    async def update_workflow_defs(request: Request) -> Response:
        defs = decode_workflow_defs(request.body, task_defs=await engine.metadata.task_defs())
        for i, definition in enumerate(defs):
            check_version(definition.version, f"[{i}].version")
        result = BulkResponse()
        for definition in defs:
            existing = await store.get_workflow_def(definition.name, definition.version)
            await _put_workflow_def(definition, existing)
            result.bulk_successful_results.append(definition.name)
        engine.metadata_changed()
        return wire.json(result)

    async def validate_workflow_def(request: Request) -> Response:
        definition = codec.decode(request.body, WorkflowDef, subject="workflow definition")
        check_workflow_def(definition, task_defs=await engine.metadata.task_defs())
        return Response.empty()

    async def get_workflow_def(request: Request) -> Response:
        name = path_str(request, "name")
        number = optional_int(request, "version")
        definition = await engine.metadata.workflow_def(name, number, fresh=True)
        if definition is None:
            shown = number if number is not None else "latest"
            raise NotFound(f"No such workflow found by name: {name}, version: {shown}")
        return wire.json(wire.def_builtins(definition))

    async def get_workflow_defs(request: Request) -> Response:
        defs = await _all_workflow_defs()
        return wire.json([wire.def_builtins(d) for d in defs])

    async def latest_versions(request: Request) -> Response:
        latest: dict[str, WorkflowDef] = {}
        for d in await _all_workflow_defs():
            latest[d.name] = d  # sorted by version: the last one wins
        return wire.json([wire.def_builtins(d) for d in latest.values()])

    async def names_and_versions(request: Request) -> Response:
        out: dict[str, list[WorkflowDefSummary]] = {}
        for d in await _all_workflow_defs():
            out.setdefault(d.name, []).append(
                WorkflowDefSummary(
                    name=d.name,
                    version=d.version,
                    create_time=_time(d.create_time),
                    update_time=_time(d.update_time),
                )
            )
        return wire.json(out)

    async def workflow_names(request: Request) -> Response:
        names = sorted({d.name for d in await _all_workflow_defs()})
        return wire.json(names)

    async def workflow_versions(request: Request) -> Response:
        name = path_str(request, "name")
        found = [
            WorkflowDefSummary(
                name=d.name,
                version=d.version,
                create_time=_time(d.create_time),
                update_time=_time(d.update_time),
            )
            for d in await _all_workflow_defs()
            if d.name == name
        ]
        if not found:
            raise NotFound(f"No such workflow found by name: {name}")
        return wire.json(found)

    async def delete_workflow_def(request: Request) -> Response:
        name = path_str(request, "name")
        version = path_int(request, "version")
        if not await store.delete_workflow_def(name, version):
            raise NotFound(f"No such workflow found by name: {name}, version: {version}")
        engine.metadata_changed()
        return Response.empty()

    base = "/api/metadata"
    add = router.add
    add(
        "POST",
        f"{base}/taskdefs",
        register_task_defs,
        body=list[TaskDef],
        tags=TAGS,
        summary="Register (upsert) task definitions",
    )
    add(
        "PUT",
        f"{base}/taskdefs",
        update_task_def,
        body=TaskDef,
        tags=TAGS,
        summary="Update an existing task definition",
    )
    add(
        "GET",
        f"{base}/taskdefs",
        get_task_defs,
        response=list[TaskDef],
        tags=TAGS,
        summary="Every task definition",
    )
    add(
        "GET",
        f"{base}/taskdefs/{{tasktype}}",
        get_task_def,
        response=TaskDef,
        tags=TAGS,
        summary="One task definition",
    )
    add(
        "DELETE",
        f"{base}/taskdefs/{{tasktype}}",
        delete_task_def,
        tags=TAGS,
        summary="Remove a task definition",
    )
    add(
        "POST",
        f"{base}/workflow",
        register_workflow_def,
        body=WorkflowDef,
        tags=TAGS,
        query=(QueryParam("overwrite", bool, False, "replace an existing name+version"),),
        summary="Register a workflow definition (409 if it exists)",
    )
    add(
        "PUT",
        f"{base}/workflow",
        update_workflow_defs,
        body=list[WorkflowDef],
        response=BulkResponse,
        tags=TAGS,
        query=(QueryParam("overwrite", bool, True, "accepted; PUT always replaces"),),
        summary="Create or update workflow definitions",
    )
    add(
        "POST",
        f"{base}/workflow/validate",
        validate_workflow_def,
        body=WorkflowDef,
        tags=TAGS,
        summary="Validate a workflow definition without registering it",
    )
    add(
        "GET",
        f"{base}/workflow",
        get_workflow_defs,
        response=list[WorkflowDef],
        tags=TAGS,
        summary="Every version of every workflow definition",
    )
    add(
        "GET",
        f"{base}/workflow/latest-versions",
        latest_versions,
        response=list[WorkflowDef],
        tags=TAGS,
        summary="The latest version of each workflow",
    )
    add(
        "GET",
        f"{base}/workflow/names-and-versions",
        names_and_versions,
        response=dict[str, list[WorkflowDefSummary]],
        tags=TAGS,
        summary="Versions of each workflow definition",
    )
    add(
        "GET",
        f"{base}/workflow/names",
        workflow_names,
        response=list[str],
        tags=TAGS,
        summary="Names of the workflow definitions",
    )
    add(
        "GET",
        f"{base}/workflow/{{name}}/versions",
        workflow_versions,
        response=list[WorkflowDefSummary],
        tags=TAGS,
        summary="Versions of one workflow",
    )
    add(
        "GET",
        f"{base}/workflow/{{name}}",
        get_workflow_def,
        response=WorkflowDef,
        tags=TAGS,
        query=(QueryParam("version", int, None, "absent: the latest version"),),
        summary="One workflow definition",
    )
    add(
        "DELETE",
        f"{base}/workflow/{{name}}/{{version}}",
        delete_workflow_def,
        tags=TAGS,
        summary="Remove one version of a workflow definition",
    )
