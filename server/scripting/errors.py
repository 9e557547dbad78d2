"""The two ways a script evaluation fails.

Rules: every failure of a user's script (syntax error, runtime error, thrown value, stack
overflow, memory limit, a result that is not JSON) is a `ScriptError` whose message is the
engine's own one-line message, ready to be a task's `reasonForIncompletion`. Running out of
time is the subclass `ScriptTimeout`, because Conductor retries a timed-out INLINE task but
not one whose script failed on its own. Neither is an API error: the engine turns them into
`core.decisions.ScriptResult(error=..., timed_out=...)`, never into an HTTP status.
"""

from __future__ import annotations


class ScriptError(Exception):
    """A script could not be evaluated; `message` says why in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ScriptTimeout(ScriptError):
    """A script ran past its time limit and was interrupted."""
