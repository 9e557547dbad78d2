"""An OpenAPI 3.1 document generated from the route table.

Rules: the document is derived only from what routes declare (template, method, body and
response types, query parameters, summary, tags); msgspec generates the schemas
(`schema_components`, JSON Schema 2020-12, which OpenAPI 3.1 uses). Every operation
documents Conductor's error body as its `default` response. The document is built and
encoded once, on first request, after every route is registered.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from core.codec import encode
from core.models import ErrorResponse
from server.http.request import Request
from server.http.response import Response
from server.http.router import Route, Router

REF_TEMPLATE = "#/components/schemas/{name}"
_NON_WORD = re.compile(r"[^0-9A-Za-z]+")


def _schema_hook(type_: type) -> dict[str, Any]:
    # `object` (any JSON value, e.g. a validation error's invalidValue) has no
    # built-in schema in msgspec.
    if type_ is object:
        return {"description": "any JSON value"}
    raise NotImplementedError


def _operation_id(route: Route) -> str:
    name = getattr(route.handler, "__name__", "")
    if name and name != "<lambda>":
        return name
    return route.method.lower() + "_" + _NON_WORD.sub("_", route.template).strip("_")


def openapi_document(
    router: Router, *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    """Describe every route of `router` as an OpenAPI 3.1 document.

    Args:
        router: the route table.
        title: `info.title`.
        version: `info.version` (the API's version).
        description: `info.description`.

    Returns:
        The document as builtins, ready to encode as JSON.

    Raises:
        TypeError: a route declares a type msgspec cannot describe.
    """
    types: list[Any] = [ErrorResponse]
    for route in router.routes:
        for declared in (route.body, route.response):
            if declared is not None and declared is not str:
                types.append(declared)
        types.extend(param.type for param in route.query)
    unique = list(dict.fromkeys(types))
    schemas, components = msgspec.json.schema_components(
        unique, ref_template=REF_TEMPLATE, schema_hook=_schema_hook
    )
    schema_of = dict(zip(unique, schemas, strict=True))
    error_content = {"application/json": {"schema": schema_of[ErrorResponse]}}

    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for route in router.routes:
        base_id = operation_id = _operation_id(route)
        suffix = 1
        while operation_id in used_ids:  # operationId must be unique in the document
            suffix += 1
            operation_id = f"{base_id}_{suffix}"
        used_ids.add(operation_id)
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in route.param_names
        ]
        for param in route.query:
            schema = dict(schema_of[param.type])
            if param.default is not None:
                schema["default"] = msgspec.to_builtins(param.default)
            entry: dict[str, Any] = {
                "name": param.name,
                "in": "query",
                "required": param.required,
                "schema": schema,
            }
            if param.description:
                entry["description"] = param.description
            parameters.append(entry)
        success: dict[str, Any] = {"description": "Success"}
        if route.response is str:
            success["content"] = {"text/plain": {"schema": {"type": "string"}}}
        elif route.response is not None:
            success["content"] = {"application/json": {"schema": schema_of[route.response]}}
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "responses": {
                str(route.status): success,
                "default": {"description": "Error", "content": error_content},
            },
        }
        if route.summary:
            operation["summary"] = route.summary
        if route.tags:
            operation["tags"] = list(route.tags)
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of[route.body]}},
            }
        paths.setdefault(route.template, {})[route.method.lower()] = operation

    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
        "components": {"schemas": components},
    }


def add_openapi_routes(
    router: Router,
    *,
    title: str = "Podium",
    version: str = "0.1.0",
    description: str = "",
    paths: tuple[str, ...] = ("/api-docs", "/openapi.json"),
) -> None:
    """Serve the router's OpenAPI document at `paths` (Conductor's is `/api-docs`).

    The document is generated on the first request, so register every other route
    first (later routes show up only if the route count changed since).
    """
    cache: dict[int, bytes] = {}

    async def openapi(request: Request) -> Response:
        key = len(router.routes)
        body = cache.get(key)
        if body is None:
            cache.clear()
            body = cache[key] = encode(
                openapi_document(router, title=title, version=version, description=description)
            )
        return Response.raw_json(body)

    for path in paths:
        router.add("GET", path, openapi, summary="This API as an OpenAPI 3.1 document")
