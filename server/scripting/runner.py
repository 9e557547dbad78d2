"""Answer the decider's `EvaluateScript` action with a `ScriptResult` event.

Rules:
- Pure dispatch by `action.language` (case-insensitive): "javascript" and its aliases
  "graaljs", "js", "ecmascript" -> `evaluate_js`; "lambda" -> `evaluate_lambda`; "jq" ->
  `run_jq`. Any other language is an error result, not an exception.
- The result value: for JavaScript and LAMBDA the script's value; for jq the
  JSON_JQ_TRANSFORM output map `{"result": first, "resultList": [all]}`.
- Never raises for a failing script: `ScriptTimeout` -> `error=..., timed_out=True`, any
  other `ScriptError` -> `error=...`. Runs on whichever thread calls it (each thread has
  its own JavaScript context).
"""

from __future__ import annotations

from core.decisions import EvaluateScript, ScriptResult
from server.scripting.errors import ScriptError, ScriptTimeout
from server.scripting.jq import run_jq
from server.scripting.js import DEFAULT_TIMEOUT_S, evaluate_js, evaluate_lambda

JAVASCRIPT_LANGUAGES = frozenset({"javascript", "graaljs", "js", "ecmascript"})


def run_script(action: EvaluateScript, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> ScriptResult:
    """Evaluate one `EvaluateScript` action.

    Args:
        action: The decider's request: task id, language, script, bindings.
        timeout_s: Time limit for JavaScript (Conductor's default is 4 s,
            `CONDUCTOR_SCRIPT_MAX_EXECUTION_SECONDS`).

    Returns:
        `ScriptResult(task_id, value=...)` on success, `ScriptResult(task_id, error=...)`
        on failure, with `timed_out=True` when the time limit stopped the script.
    """
    language = action.language.lower()
    try:
        if language in JAVASCRIPT_LANGUAGES:
            value = evaluate_js(action.script, action.bindings, timeout_s=timeout_s)
        elif language == "lambda":
            value = evaluate_lambda(action.script, action.bindings, timeout_s=timeout_s)
        elif language == "jq":
            first, results = run_jq(action.script, action.bindings)
            value = {"result": first, "resultList": results}
        else:
            known = ", ".join(sorted(JAVASCRIPT_LANGUAGES | {"lambda", "jq"}))
            return ScriptResult(
                task_id=action.task_id,
                error=f"unknown script language {action.language!r} (known: {known})",
            )
    except ScriptTimeout as exc:
        return ScriptResult(task_id=action.task_id, error=exc.message, timed_out=True)
    except ScriptError as exc:
        return ScriptResult(task_id=action.task_id, error=exc.message)
    return ScriptResult(task_id=action.task_id, value=value)
