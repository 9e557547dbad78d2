"""JavaScript evaluation (INLINE, SWITCH, DECISION, DO_WHILE, LAMBDA, event conditions).

Rules:
- Engine: QuickJS (`quickjs` package). A QuickJS runtime records the C stack of the thread
  that created it, and using it from any other thread crashes or corrupts it. So each
  thread owns one context, created lazily in a `threading.local` and never handed to
  another thread. Callable from the trio thread and from `trio.to_thread` workers alike.
- `$` is the bindings, passed in as JSON text; the result is the script's completion
  value, passed out through `JSON.stringify` and decoded by `jsonvalues` (int64 rule,
  `undefined` and functions become `None`). The prelude (`prelude.py`) keeps scripts from
  leaking declarations into the next evaluation and adds the Java-isms Nashorn allowed.
- Limits: `set_time_limit` and `set_memory_limit` per context (the limits are re-applied
  only when they change). QuickJS measures the time limit in *process CPU time*
  (`clock()`): a runaway script stops after at most the limit in CPU seconds, earlier
  while other threads of the process are busy. Deep recursion raises QuickJS's own
  "stack overflow" error because the context is used only on its own thread.
- After a timeout or running out of memory the context is thrown away and the next call on
  that thread builds a fresh one (an interrupted script skips its `finally` blocks, and an
  exhausted heap can leave the context unable to run anything); likewise after a script
  that left promise jobs queued (see `_drop_pending_jobs`) or a global object the prelude
  could not restore.
- Errors are `ScriptError` (message: the first line of QuickJS's message, e.g.
  "ReferenceError: 'x' is not defined"), timeouts `ScriptTimeout`.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

import quickjs

from server.scripting.errors import ScriptError, ScriptTimeout
from server.scripting.jsonvalues import from_json_text, to_json_text
from server.scripting.prelude import PRELUDE

DEFAULT_TIMEOUT_S = 4.0
DEFAULT_MEMORY_LIMIT_BYTES = 64 * 1024 * 1024

# Giving bound objects the Java map methods costs a walk over the bindings (about a fifth
# of the JSON parse). Scripts that call one of them name it in their source, so the walk
# runs only for those (a method called through a computed name, `m[name]()`, is missed).
_MAP_METHOD_NAMES = re.compile(r"\b(?:get|getOrDefault|containsKey|size|isEmpty|keySet|values)\b")


@lru_cache(maxsize=1024)
def _names_map_method(script: str) -> bool:
    # Cached: the same definition's scripts come back again and again, and the search
    # costs a few microseconds, a third of a whole evaluation.
    return _MAP_METHOD_NAMES.search(script) is not None


# The prelude's prefix for "the global object could not be restored" (never starts JSON).
_DIRTY = "!"

_INTERRUPTED = "InternalError: interrupted"
_OUT_OF_MEMORY = "InternalError: out of memory"
# When the heap is too full even to allocate the error object, QuickJS throws `null`,
# which Python cannot tell from a script's own `throw null`: by the time the exception
# reaches Python the script's garbage is already freed.
_NULL_THROWN = "null"


class _Engine:
    """One thread's QuickJS context, its prelude entry point and the limits it holds."""

    __slots__ = ("__weakref__", "context", "memory_limit", "run", "time_limit")

    def __init__(self) -> None:
        self.context = quickjs.Context()
        self.time_limit = -1.0
        self.memory_limit = -1
        self.run = self.context.eval(PRELUDE)

    def apply_limits(self, timeout_s: float, memory_limit_bytes: int) -> None:
        if timeout_s != self.time_limit:
            self.context.set_time_limit(timeout_s)
            self.time_limit = timeout_s
        if memory_limit_bytes != self.memory_limit:
            self.context.set_memory_limit(memory_limit_bytes)
            self.memory_limit = memory_limit_bytes


class _PerThread(threading.local):
    engine: _Engine | None = None


_local = _PerThread()


def _engine() -> _Engine:
    engine = _local.engine
    if engine is None:
        engine = _local.engine = _Engine()
    return engine


def _discard_engine() -> None:
    _local.engine = None


def evaluate_js(
    script: str,
    bindings: Any,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES,
) -> Any:
    """Evaluate a JavaScript program with `$` bound to `bindings`.

    Args:
        script: The program. Its completion value is the result: a trailing expression
            statement, `if (...) { true; } else { false; }`, or an invoked function.
        bindings: A JSON-compatible value, visible to the script as `$`.
        timeout_s: CPU-time limit for this evaluation, in seconds (must be > 0).
        memory_limit_bytes: Heap limit of this thread's context.

    Returns:
        The completion value as JSON-compatible Python: None (null or undefined), bool,
        str, int (integral and within int64), float, list or dict.

    Raises:
        ScriptTimeout: The script ran past `timeout_s`.
        ScriptError: Syntax error, runtime error, thrown value, stack overflow, memory
            limit, a result JSON cannot represent (a cycle), or bindings that are not JSON.
        ValueError: A limit is not positive (a caller's bug, not the script's).
    """
    if not isinstance(script, str):
        raise ScriptError(f"the script must be a string, not {type(script).__name__}")
    if "\x00" in script:
        # QuickJS reads the source as a C string and would silently drop the rest.
        raise ScriptError("the script contains a NUL character")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, not {timeout_s!r}")
    if memory_limit_bytes <= 0:
        # QuickJS reads 0 as "no byte may be allocated", not as "no limit".
        raise ValueError(f"memory_limit_bytes must be positive, not {memory_limit_bytes!r}")
    bindings_json = to_json_text(bindings, what="the bindings")
    java_maps = _names_map_method(script)
    engine = _engine()
    engine.apply_limits(timeout_s, memory_limit_bytes)
    error: ScriptError | None = None
    result: str | None = None
    try:
        result = engine.run(script, bindings_json, java_maps)
    except quickjs.StackOverflow as exc:
        error = ScriptError(_first_line(exc))
    except quickjs.JSException as exc:
        error = _classify(exc, engine, timeout_s)
    if error is None:
        if result is not None and result.startswith(_DIRTY):
            _discard_engine()
            result = result[1:] or None
    elif _local.engine is engine and engine.run(None) == _DIRTY:
        _discard_engine()
    _drop_pending_jobs(engine)
    # The raised error's traceback keeps this frame's locals alive, and trio.to_thread
    # hands it to another thread; a discarded context must not be freed over there.
    del engine
    if error is not None:
        raise error
    if result is None:
        return None
    return from_json_text(result)


def evaluate_lambda(
    script: str,
    bindings: Any,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES,
) -> Any:
    """Evaluate a LAMBDA task's `scriptExpression`: a function body that `return`s the result.

    The body is wrapped as Conductor does, `function scriptFun(){ <body> } scriptFun();`,
    with a newline before the closing brace so that a trailing `//` comment cannot swallow it.

    Raises:
        ScriptTimeout, ScriptError: As `evaluate_js`.
    """
    if not isinstance(script, str):
        raise ScriptError(f"the script must be a string, not {type(script).__name__}")
    wrapped = "function scriptFun(){" + script + "\n} scriptFun();"
    return evaluate_js(
        wrapped, bindings, timeout_s=timeout_s, memory_limit_bytes=memory_limit_bytes
    )


def js_truthy(value: Any) -> bool:
    """Conductor's boolean reading of a script result (DO_WHILE, event conditions).

    A bool is itself, a number is true when > 0, anything else (strings, null, lists,
    maps) is false.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value > 0
    return False


def _drop_pending_jobs(engine: _Engine) -> None:
    """Throw the context away if the script left promise jobs queued.

    Nothing runs the job queue between evaluations, so the jobs of `promise.then(...)` or
    an `await` would pile up in the context, each holding its closure, and a later drain
    would run one script's code during another's. QuickJS has no "is a job pending" call;
    running one job (under the same time limit) is the probe, and a fresh context drops
    the rest.
    """
    if _local.engine is engine and engine.context.execute_pending_job():
        _discard_engine()


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.split("\n", 1)[0].strip() or "the script failed without a message"


def _classify(exc: quickjs.JSException, engine: _Engine, timeout_s: float) -> ScriptError:
    """Turn a QuickJS exception into ScriptTimeout/ScriptError, discarding a spoiled context."""
    message = _first_line(exc)
    if message == _INTERRUPTED:
        _discard_engine()
        return ScriptTimeout(f"the script ran longer than its time limit of {timeout_s:g} s")
    limit_mib = engine.memory_limit / (1024 * 1024)
    if message == _OUT_OF_MEMORY:
        _discard_engine()
        return ScriptError(f"the script ran out of memory (limit {limit_mib:g} MiB)")
    if message == _NULL_THROWN:
        _discard_engine()
        return ScriptError(f"the script ran out of memory (limit {limit_mib:g} MiB) or threw null")
    return ScriptError(message)
