"""Compare original wire JSON with what Podium re-encodes, field by field.

Rules: every key of the original must come back with an equal value (no field lost,
none changed); a key the original lacked may appear only with the model's default
value (Podium always encodes concrete defaults; Conductor omits nulls). The walk
follows the msgspec type of each value, so nested definitions are checked with their
own defaults.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
from msgspec import inspect as mi


def wire_differences(original: Any, reencoded: Any, type_: Any) -> list[str]:
    """Every difference that is not an allowed default-valued addition.

    Args:
        original: the JSON as first received (decoded with the stdlib).
        reencoded: the same value decoded into the model and encoded again, as builtins.
        type_: the model type (e.g. WorkflowDef or list[TaskDef]).

    Returns:
        One line per problem, `path: explanation`; empty when the round trip is faithful.
    """
    problems: list[str] = []
    _compare(original, reencoded, mi.type_info(type_), "$", problems)
    return problems


def _default_of(field: mi.Field) -> Any:
    if field.default_factory is not msgspec.NODEFAULT:
        value = field.default_factory()
    else:
        value = field.default
    return value.value if isinstance(value, enum.Enum) else value


def _compare(orig: Any, new: Any, t: mi.Type, path: str, out: list[str]) -> None:
    if isinstance(t, mi.UnionType):
        t = _pick_member(orig, t)
    if isinstance(t, mi.StructType):
        if not isinstance(orig, dict) or not isinstance(new, dict):
            out.append(f"{path}: expected objects, got {orig!r} -> {new!r}")
            return
        fields = {f.encode_name: f for f in t.fields}
        for key, value in orig.items():
            field = fields.get(key)
            if field is None:
                out.append(f"{path}.{key}: unknown to the model, lost on re-encode")
            elif key not in new:
                out.append(f"{path}.{key}: present in the original, missing after re-encode")
            else:
                _compare(value, new[key], field.type, f"{path}.{key}", out)
        for key in new.keys() - orig.keys():
            field = fields[key]
            if field.required or new[key] != _default_of(field):
                out.append(f"{path}.{key}: added with non-default value {new[key]!r}")
    elif isinstance(t, mi.ListType) and isinstance(orig, list) and isinstance(new, list):
        if len(orig) != len(new):
            out.append(f"{path}: list length {len(orig)} -> {len(new)}")
            return
        for i, (a, b) in enumerate(zip(orig, new, strict=True)):
            _compare(a, b, t.item_type, f"{path}[{i}]", out)
    elif isinstance(t, mi.DictType) and isinstance(orig, dict) and isinstance(new, dict):
        if orig.keys() != new.keys():
            out.append(f"{path}: keys {sorted(orig)} -> {sorted(new)}")
            return
        for key in orig:
            _compare(orig[key], new[key], t.value_type, f"{path}.{key}", out)
    elif orig != new or type(orig) is not type(new):
        out.append(f"{path}: {orig!r} -> {new!r}")


def _pick_member(value: Any, union: mi.UnionType) -> mi.Type:
    """The union member a JSON value decodes as (object -> struct or dict, else scalar)."""
    for member in union.types:
        if isinstance(value, dict) and isinstance(member, mi.StructType | mi.DictType):
            return member
        if isinstance(value, list) and isinstance(member, mi.ListType):
            return member
    return mi.AnyType()
