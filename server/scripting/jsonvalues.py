"""JSON in and out of the script engines, with Conductor's number rules.

Rules: values cross into QuickJS and jq as JSON text (msgspec, one C call each way) and come
back as JSON text. Both engines compute in IEEE doubles, and numbers come back the way
Conductor's Java side sees a double: an integral number that fits a signed 64-bit long is
an `int` holding the double's exact value, anything else (fractions, 1e20) is a `float`.
The exact value matters above 2**53, where JavaScript prints 2**62 as
"4611686018427388000" (the shortest text that parses back to the same double), not as
4611686018427387904. JSON text never carries `undefined`, so `None` stands for both
`null` and "no value".
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from server.scripting.errors import ScriptError

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EXACT_DOUBLE_MAX = 2**53

# An integer above 2**53 has at least 16 digits; text without such a run cannot hold one,
# so the (Python-speed) walk below is skipped for nearly every result.
_LONG_DIGIT_RUN = re.compile(r"\d{16}")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def to_json_text(value: Any, *, what: str) -> str:
    """Encode `value` as JSON text for an engine.

    Args:
        value: A JSON-compatible Python value (dict/list/str/int/float/bool/None).
        what: What the value is, for the error message ("the bindings", "the jq input").

    Raises:
        ScriptError: The value is not JSON-compatible.
    """
    try:
        return _encoder.encode(value).decode()
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise ScriptError(f"{what} cannot be encoded as JSON: {exc}") from exc


def from_json_text(text: str) -> Any:
    """Decode an engine's JSON output, applying the int64 rule.

    Raises:
        ScriptError: The text is not JSON (an engine bug, reported rather than hidden).
    """
    try:
        value = _decoder.decode(text)
    except msgspec.DecodeError:
        # msgspec refuses lone UTF-16 surrogates ("\ud800"), which JSON.stringify may
        # legally emit; the stdlib decoder keeps them.
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ScriptError(f"the script's result is not valid JSON: {exc}") from exc
    if _LONG_DIGIT_RUN.search(text) is not None:
        value = clamp_ints(value)
    return value


def clamp_ints(value: Any) -> Any:
    """Apply the int64 rule to integers above 2**53, recursively.

    Such an integer becomes the exact value of the double it stands for, and a float
    when that value falls outside the int64 range.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -_EXACT_DOUBLE_MAX <= value <= _EXACT_DOUBLE_MAX:
            return value
        as_double = float(value)
        return int(as_double) if _INT64_MIN <= as_double <= _INT64_MAX else as_double
    if isinstance(value, list):
        return [clamp_ints(item) for item in value]
    if isinstance(value, dict):
        return {key: clamp_ints(item) for key, item in value.items()}
    return value
