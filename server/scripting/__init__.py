"""Script evaluation for system tasks: JavaScript (QuickJS) and jq.

Rules: this package is the only place that touches the `quickjs` and `jq` packages. Its
public surface is re-exported here; `runner.run_script` is what the engine calls for the
decider's `EvaluateScript` action. Everything is synchronous and thread-safe (one
JavaScript context per thread), so it can run on the trio thread or in `trio.to_thread`.
"""

from __future__ import annotations

from server.scripting.errors import ScriptError, ScriptTimeout
from server.scripting.jq import check_jq, run_jq
from server.scripting.js import (
    DEFAULT_MEMORY_LIMIT_BYTES,
    DEFAULT_TIMEOUT_S,
    evaluate_js,
    evaluate_lambda,
    js_truthy,
)
from server.scripting.runner import run_script

__all__ = [
    "DEFAULT_MEMORY_LIMIT_BYTES",
    "DEFAULT_TIMEOUT_S",
    "ScriptError",
    "ScriptTimeout",
    "check_jq",
    "evaluate_js",
    "evaluate_lambda",
    "js_truthy",
    "run_jq",
    "run_script",
]
