"""Full JSONPath for the expressions the mapping fast path cannot take (not hot).

Rules: evaluation goes through the real JSONPath library (`python-jsonpath`, import name
`jsonpath`); nothing here re-implements selectors. The one addition is Jayway's trailing
aggregate functions (`.length()`, `.size()`, `.min()`, `.max()`, `.avg()`, `.sum()`,
`.stddev()`, `.first()`, `.last()`, `.keys()`), which Conductor users write and the library
does not parse: the function is split off and applied to the library's result. Any other
trailing call (`.concat(...)`, `.currentTimeMillis()`) compiles and yields null, as the
evaluation error it raises in Jayway is null in Conductor.
A definite (singular) path yields its value or None; an indefinite one (`..`, `*`, filters,
slices) yields a list, possibly empty. Evaluation never raises: errors yield None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import jsonpath

# A Jayway-style function call ending the path: `.name(arguments)`.
_TRAILING_CALL = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)\(([^()]*)\)\s*$")


class QuerySyntaxError(Exception):
    """The JSONPath library rejected an expression; the message is the library's."""


def _numbers(value: Any) -> list[float]:
    if not isinstance(value, list):
        raise TypeError("aggregate functions need a list")
    nums = [float(v) for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    if not nums:
        raise ValueError("aggregate of an empty list")
    return nums


def _length(value: Any) -> int:
    if isinstance(value, list | dict | str):
        return len(value)
    raise TypeError("length() needs a list, an object or a string")


def _avg(value: Any) -> float:
    nums = _numbers(value)
    return sum(nums) / len(nums)


def _stddev(value: Any) -> float:
    nums = _numbers(value)
    mean = sum(nums) / len(nums)
    return math.sqrt(sum((x - mean) ** 2 for x in nums) / len(nums))


def _unsupported(value: Any) -> None:
    # Jayway parses any function name and fails only when evaluating an unknown one, which
    # Conductor turns into null: do the same instead of rejecting the definition.
    return None


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return list(value)
    raise TypeError("keys() needs an object")


# Jayway returns doubles from the numeric aggregates: 3.0, not 3.
_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "length": _length,
    "size": _length,
    "min": lambda v: min(_numbers(v)),
    "max": lambda v: max(_numbers(v)),
    "avg": _avg,
    "sum": lambda v: math.fsum(_numbers(v)),
    "stddev": _stddev,
    "first": lambda v: v[0] if isinstance(v, list) and v else None,
    "last": lambda v: v[-1] if isinstance(v, list) and v else None,
    "keys": _keys,
}


class Query:
    """A compiled JSONPath (plus an optional trailing function), evaluated against a dict."""

    def __init__(self, path: Any, function: Callable[[Any], Any] | None, text: str) -> None:
        self._path = path
        self._singular = bool(path.singular_query())
        self._function = function
        self.text = text

    def evaluate(self, document: dict[str, Any]) -> Any:
        """Evaluate against the render context; None on any error.

        Args:
            document: the render context (root name -> value).

        Returns:
            The value (definite path), a list of matches (indefinite path), or the
            function's result.
        """
        try:
            matches = self._path.findall(document)
            if self._singular:
                result = matches[0] if matches else None
            else:
                result = list(matches)
            if self._function is not None:
                return None if result is None else self._function(result)
            return result
        except Exception:  # a path error is null, never a failed render (spec 6.2)
            return None


def compile_query(text: str) -> Query:
    """Compile a full JSONPath such as `$['t'].output..status`.

    Args:
        text: a JSONPath starting with `$`.

    Raises:
        QuerySyntaxError: the library cannot parse it.
    """
    function: Callable[[Any], Any] | None = None
    path_text = text
    match = _TRAILING_CALL.search(text)
    if match is not None:
        name, arguments = match.group(1), match.group(2)
        known = _FUNCTIONS.get(name)
        function = known if known is not None and not arguments.strip() else _unsupported
        path_text = text[: match.start()]
    try:
        path = jsonpath.compile(path_text)
    except jsonpath.JSONPathError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QuerySyntaxError(first_line) from exc
    if not isinstance(path, jsonpath.JSONPath):
        # A compound query (`a | b`, `a & b`) is not JSONPath as Conductor knows it.
        raise QuerySyntaxError("union and intersection operators are not supported")
    return Query(path, function, text)
