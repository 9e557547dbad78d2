"""jq evaluation for JSON_JQ_TRANSFORM.

Rules:
- Engine: the `jq` package (libjq). Compiling costs about a millisecond and running a
  compiled program about ten microseconds, so compiled programs are cached, keyed by the
  query text, in a bounded LRU (compile *errors* are cached too: a bad query in a
  definition must not cost a compile on every run). Compiled programs are safe to share
  between threads (the package pools libjq states behind a lock).
- The query runs collected, as `[ <query>\\n]`, so that all results come back as one JSON
  text, decoded by msgspec with the int64 rule of `jsonvalues`. The newline keeps a
  trailing `# comment` in the query from swallowing the bracket. Validity and error
  messages come from compiling the query as written; a query that compiles only as
  written (a top-of-program `module` directive) runs as written.
- Errors are `ScriptError` carrying jq's own message ("jq: error: syntax error, ..." for a
  compile error, "Cannot index number with string \\"b\\"" at run time).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import jq as libjq

from server.scripting.errors import ScriptError
from server.scripting.jsonvalues import clamp_ints, from_json_text, to_json_text

CACHE_SIZE = 512


class _Compiled:
    """A cached compile outcome: the program (collected or as written) or the error."""

    __slots__ = ("collected", "error", "program")

    def __init__(self, program: Any, *, collected: bool, error: str | None) -> None:
        self.program = program
        self.collected = collected
        self.error = error


_cache: OrderedDict[str, _Compiled] = OrderedDict()
_cache_lock = threading.Lock()


def _compile(query: str) -> _Compiled:
    # The query as written decides validity and the error message (the collected form
    # would accept an empty query as `[]` and would shift error columns).
    try:
        program = libjq.compile(query)
    except ValueError as exc:
        return _Compiled(None, collected=False, error=str(exc))
    try:
        return _Compiled(libjq.compile(f"[{query}\n]"), collected=True, error=None)
    except ValueError:
        # Only top-of-program directives (`module {...};`) end up here.
        return _Compiled(program, collected=False, error=None)


def _compiled(query: str) -> _Compiled:
    with _cache_lock:
        entry = _cache.get(query)
        if entry is not None:
            _cache.move_to_end(query)
            return entry
    # Compile outside the lock: two threads may both compile a new query once; harmless.
    entry = _compile(query)
    with _cache_lock:
        _cache[query] = entry
        _cache.move_to_end(query)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return entry


def _usable(query: str) -> _Compiled:
    if not isinstance(query, str):
        raise ScriptError(f"the jq query must be a string, not {type(query).__name__}")
    entry = _compiled(query)
    if entry.error is not None:
        raise ScriptError(entry.error)
    return entry


def check_jq(query: str) -> None:
    """Compile a jq query (through the cache) without running it.

    Raises:
        ScriptError: The query does not compile; the message is jq's.
    """
    _usable(query)


def run_jq(query: str, document: Any) -> tuple[Any, list[Any]]:
    """Run a jq query over a JSON document.

    Args:
        query: The jq program (JSON_JQ_TRANSFORM's `queryExpression`).
        document: The input, a JSON-compatible value (the task's whole input map).

    Returns:
        `(first, all)`: the first result (None when there is none) and the list of every
        result, i.e. JSON_JQ_TRANSFORM's `result` and `resultList`.

    Raises:
        ScriptError: The query does not compile, fails at run time, or the document is not
            JSON-compatible.
    """
    entry = _usable(query)
    text = to_json_text(document, what="the jq input")
    try:
        if entry.collected:
            results = from_json_text(entry.program.input_text(text).text())
        else:
            results = clamp_ints(entry.program.input_text(text).all())
    except ValueError as exc:
        raise ScriptError(str(exc) or "jq failed without a message") from None
    if not isinstance(results, list):
        raise ScriptError(f"jq returned {type(results).__name__} where a list was expected")
    return (results[0] if results else None), results
