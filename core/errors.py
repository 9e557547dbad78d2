"""The error tree: every error a user can cause maps to one HTTP status.

Rules: API misuse raises a PodiumError subclass whose class-level `http_status` the
server turns into Conductor's error body; failures of a *workflow* are data (a task or
workflow status), never exceptions. Messages say what is wrong, where, and the fix.
Always chain: `raise X(...) from exc`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in a request body: a JSON path (`tasks[3].name`) and a message."""

    path: str
    message: str
    invalid_value: object = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PodiumError(Exception):
    """Base class. `http_status` is what the REST layer answers with."""

    http_status = 500
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(PodiumError):
    http_status = 400


class DefinitionError(BadRequest):
    """A definition or request body failed validation; carries every problem found."""

    def __init__(self, errors: list[FieldError], *, subject: str = "definition") -> None:
        self.errors = list(errors)
        lines = "; ".join(str(e) for e in self.errors)
        super().__init__(f"Invalid {subject}: {lines}")


class MappingError(BadRequest):
    """A `${...}` expression that cannot be parsed: names the expression and offset."""


class NotFound(PodiumError):
    http_status = 404


class Conflict(PodiumError):
    """Duplicate definition, illegal state change, or an optimistic-concurrency clash."""

    http_status = 409


class IllegalTransition(Conflict):
    """An operation that the workflow's or task's current state does not allow."""


class VersionConflict(Conflict):
    """Two writers raced on one workflow: the loser reloads and decides again."""

    retryable = True


class Unavailable(PodiumError):
    """A backing service is down or timed out; the client may retry."""

    http_status = 503
    retryable = True


class InternalError(PodiumError):
    """A broken invariant inside Podium (a bug), never the user's fault."""

    http_status = 500
