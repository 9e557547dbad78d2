"""JSON encoding and decoding for every wire model, with reusable (en|de)coders.

Rules: one msgspec Decoder per type per process, created on first use and reused (msgspec's
perf advice). Decode failures become DefinitionError carrying the JSON path
(`tasks[2].retryCount`) and msgspec's explanation, so the API can answer 400 with
the field and the fix. Encoding never fails for a valid Struct.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from core.errors import DefinitionError, FieldError

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_TOO_DEEP = FieldError("", "the JSON is nested too deeply; flatten the document")
_PATH_RE = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def encode(obj: Any) -> bytes:
    """Encode a Struct (or builtins) to JSON bytes."""
    return _encoder.encode(obj)


def to_builtins(obj: Any) -> Any:
    """A Struct as plain dicts/lists with wire (camelCase) names."""
    return msgspec.to_builtins(obj)


def decoder_for(type_: type[T]) -> msgspec.json.Decoder[T]:
    dec = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = msgspec.json.Decoder(type_)
    return dec


def field_error(exc: msgspec.ValidationError | msgspec.DecodeError, prefix: str = "") -> FieldError:
    """Turn msgspec's "Expected `int`, got `str` - at `$.a[0].b`" into a FieldError."""
    text = str(exc)
    m = _PATH_RE.match(text)
    msg, path = (m.group("msg"), m.group("path") or "") if m else (text, "")
    path = path.lstrip(".")
    if prefix:
        path = f"{prefix}.{path}" if path and not path.startswith("[") else f"{prefix}{path}"
    return FieldError(path, msg)


def decode(data: bytes | str, type_: type[T], *, subject: str = "request body") -> T:
    """Decode JSON into `type_`, raising DefinitionError (400) with the field path."""
    try:
        return decoder_for(type_).decode(data)
    except msgspec.ValidationError as exc:
        raise DefinitionError([field_error(exc)], subject=subject) from exc
    except msgspec.DecodeError as exc:
        raise DefinitionError([FieldError("", f"malformed JSON: {exc}")], subject=subject) from exc
    except RecursionError as exc:  # msgspec's guard against hostile nesting
        raise DefinitionError([_TOO_DEEP], subject=subject) from exc
    except UnicodeDecodeError as exc:  # msgspec raises this for invalid UTF-8 in a string
        raise DefinitionError(
            [FieldError("", f"malformed JSON: invalid UTF-8 ({exc.reason})")], subject=subject
        ) from exc


def convert(obj: Any, type_: type[T], *, subject: str = "value", path: str = "") -> T:
    """Convert builtins (already-decoded JSON) into `type_`, with the same errors."""
    try:
        return msgspec.convert(obj, type_)
    except msgspec.ValidationError as exc:
        raise DefinitionError([field_error(exc, path)], subject=subject) from exc
    except RecursionError as exc:
        raise DefinitionError([_TOO_DEEP], subject=subject) from exc
