"""`/api/event`: event handler definitions, and publishing a message to them (spec 1.4).

Rules:
- A handler needs a `name`, an `event` ("<type>:<queue>") and at least one action whose
  `action` is one Podium runs; every problem is reported with its path (400).
- POST creates (409 if the name exists), PUT replaces (404 if missing), DELETE removes
  (404 if missing). `GET /event/{event}` lists the handlers of that event, active ones
  only unless `activeOnly=false`.
- `POST /api/event/publish/{queue}` (Podium's own endpoint; Conductor reads external
  brokers instead) hands a JSON payload to the handlers of that queue, in process, and
  answers how many actions ran.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import codec
from core.errors import Conflict, DefinitionError, FieldError, NotFound
from core.models import EventHandler
from server.api import wire
from server.api.context import ApiContext, path_str
from server.http import QueryParam, Request, Response, Router

TAGS = ("event",)
SUPPORTED_ACTIONS = ("start_workflow", "complete_task", "fail_task", "terminate_workflow")


class PublishResult(msgspec.Struct, rename="camel", kw_only=True):
    queue: str
    actions_run: int


def check_event_handler(handler: EventHandler) -> None:
    """Validate a handler definition.

    Raises:
        DefinitionError: every problem found, with its path.
    """
    errors: list[FieldError] = []
    if not handler.name.strip():
        errors.append(FieldError("name", "must not be empty; name the handler"))
    if not handler.event.strip():
        errors.append(
            FieldError("event", 'must not be empty; use "<type>:<queue>", e.g. "conductor:q"')
        )
    if not handler.actions:
        errors.append(FieldError("actions", "needs at least one action"))
    for i, action in enumerate(handler.actions):
        if action.action not in SUPPORTED_ACTIONS:
            errors.append(
                FieldError(
                    f"actions[{i}].action",
                    f"{action.action!r} is not supported; use one of "
                    + ", ".join(SUPPORTED_ACTIONS),
                    action.action,
                )
            )
        elif getattr(action, action.action) in (None, msgspec.UNSET):
            errors.append(
                FieldError(
                    f"actions[{i}].{action.action}",
                    f"is required when action is {action.action!r}",
                )
            )
    if errors:
        raise DefinitionError(errors, subject="event handler")


def register(router: Router, ctx: ApiContext) -> None:
    """Add the event handler routes to `router`."""
    engine = ctx.engine
    store = engine.store

    async def _all() -> list[EventHandler]:
        bodies = await store.list_event_handlers()
        handlers = [codec.decode(b, EventHandler, subject="stored event handler") for b in bodies]
        handlers.sort(key=lambda h: h.name)
        return handlers

    async def add_handler(request: Request) -> Response:
        handler = request.json(EventHandler)
        check_event_handler(handler)
        if await store.get_event_handler(handler.name) is not None:
            raise Conflict(f"EventHandler with name {handler.name} already exists!")
        await store.put_event_handler(handler.name, codec.encode(handler))
        engine.metadata_changed()
        return Response.empty()

    async def update_handler(request: Request) -> Response:
        handler = request.json(EventHandler)
        check_event_handler(handler)
        if await store.get_event_handler(handler.name) is None:
            raise NotFound(f"EventHandler with name {handler.name} not found!")
        await store.put_event_handler(handler.name, codec.encode(handler))
        engine.metadata_changed()
        return Response.empty()

    async def remove_handler(request: Request) -> Response:
        name = path_str(request, "name")
        if not await store.delete_event_handler(name):
            raise NotFound(f"EventHandler with name {name} not found!")
        engine.metadata_changed()
        return Response.empty()

    async def list_handlers(request: Request) -> Response:
        return wire.json(await _all())

    async def handlers_for_event(request: Request) -> Response:
        event = path_str(request, "event")
        active_only = request.query_bool("activeOnly", True)
        found = [h for h in await _all() if h.event == event and (h.active or not active_only)]
        return wire.json(found)

    async def publish(request: Request) -> Response:
        queue = path_str(request, "queue")
        payload = (
            codec.decode(request.body, dict[str, Any], subject="event payload")
            if request.body.strip()
            else {}
        )
        count = await engine.publish_event(queue, payload, request.query_str("messageId"))
        return wire.json(PublishResult(queue=queue, actions_run=count))

    add = router.add
    add(
        "POST",
        "/api/event",
        add_handler,
        body=EventHandler,
        tags=TAGS,
        summary="Add an event handler (409 if the name exists)",
    )
    add(
        "PUT",
        "/api/event",
        update_handler,
        body=EventHandler,
        tags=TAGS,
        summary="Replace an event handler",
    )
    add(
        "GET",
        "/api/event",
        list_handlers,
        response=list[EventHandler],
        tags=TAGS,
        summary="Every event handler",
    )
    add("DELETE", "/api/event/{name}", remove_handler, tags=TAGS, summary="Remove an event handler")
    add(
        "GET",
        "/api/event/{event}",
        handlers_for_event,
        response=list[EventHandler],
        tags=TAGS,
        query=(QueryParam("activeOnly", bool, True),),
        summary="The handlers listening on an event",
    )
    add(
        "POST",
        "/api/event/publish/{queue}",
        publish,
        body=dict[str, Any],
        response=PublishResult,
        tags=TAGS,
        query=(QueryParam("messageId", str, None),),
        summary="Deliver a JSON message to the handlers of a queue (Podium extension)",
    )
