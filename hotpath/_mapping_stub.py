"""TEMPORARY stand-in for hotpath.mapping until the `mapping` branch lands.

Rules: implements only the interface the decider uses (compile_template -> Template with
render(ctx) and roots; java_string) for plain dotted/indexed `${...}` paths. Deleted as
soon as the real mapping engine is merged.
"""

from __future__ import annotations

import json
import re
from typing import Any

_EXPR = re.compile(r"\$\{([^}]*)\}")
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def java_string(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_string(v) for v in value) + "]"
    return json.dumps(value)


def _resolve(path: str, ctx: Any) -> Any:
    path = path.strip()
    if path.startswith("$."):
        path = path[2:]
    cur = ctx
    for name, idx in _PART.findall(path):
        if idx:
            if isinstance(cur, list) and int(idx) < len(cur):
                cur = cur[int(idx)]
            else:
                return None
        else:
            if isinstance(cur, dict):
                cur = cur.get(name.strip("'\""))
            else:
                return None
    return cur


class Template:
    def __init__(self, obj: Any) -> None:
        self.obj = obj
        roots: set[str] = set()
        self._collect(obj, roots)
        self.roots = frozenset(roots)

    def _collect(self, obj: Any, roots: set[str]) -> None:
        if isinstance(obj, str):
            for m in _EXPR.finditer(obj):
                first = _PART.findall(m.group(1).strip().removeprefix("$."))
                if first and first[0][0]:
                    roots.add(first[0][0])
        elif isinstance(obj, dict):
            for v in obj.values():
                self._collect(v, roots)
        elif isinstance(obj, list):
            for v in obj:
                self._collect(v, roots)

    def render(self, ctx: Any) -> Any:
        return self._render(self.obj, ctx)

    def _render(self, obj: Any, ctx: Any) -> Any:
        if isinstance(obj, str):
            m = _EXPR.fullmatch(obj)
            if m:
                return _resolve(m.group(1), ctx)
            if "${" not in obj:
                return obj
            return _EXPR.sub(lambda mm: java_string(_resolve(mm.group(1), ctx)), obj)
        if isinstance(obj, dict):
            return {k: self._render(v, ctx) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._render(v, ctx) for v in obj]
        return obj


def compile_template(obj: Any) -> Template:
    return Template(obj)
