"""The msgspec base for every wire model.

Rules: field names are snake_case in Python and camelCase on the wire (`rename="camel"`).
A field Conductor always sends has a concrete default and is always encoded; a field
Conductor leaves out when null defaults to `UNSET` and is then omitted from output
(`UNSET` is falsy, so `if wt.sink:` reads naturally). Unknown input fields are ignored,
never rejected: the official SDK sends extras. Definitions are frozen; execution
records are mutable because the decider updates them in place.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

__all__ = ["UNSET", "Frozen", "JsonMap", "Record", "UnsetType"]

JsonMap = dict[str, Any]


class Record(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=False):
    """A mutable wire record (executions, requests)."""


class Frozen(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=False, frozen=True):
    """An immutable wire record (definitions)."""
