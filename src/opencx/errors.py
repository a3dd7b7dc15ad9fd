"""One error hierarchy, mapped to HTTP statuses and CLI exit codes in one place."""

from __future__ import annotations

from typing import Any


class OpenCXError(Exception):
    """Base of every error OpenCX raises on purpose."""

    status_code = 500
    exit_code = 1

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(OpenCXError):
    """The caller sent something we cannot accept; the message names the field and why."""

    status_code = 400
    exit_code = 2


class PayloadTooLarge(InvalidInput):
    """A request or event is over a size limit."""

    status_code = 413


class Unauthorized(OpenCXError):
    """Missing or wrong credentials."""

    status_code = 401
    exit_code = 3


class Forbidden(OpenCXError):
    """Valid credentials, but the role may not do this."""

    status_code = 403
    exit_code = 3


class NotFound(OpenCXError):
    """The named thing does not exist."""

    status_code = 404
    exit_code = 4


class Conflict(OpenCXError):
    """The request conflicts with the current state (a name taken, a rule broken)."""

    status_code = 409
    exit_code = 5


class Overloaded(OpenCXError):
    """Too much work queued: retry after `retry_after` seconds."""

    status_code = 429
    exit_code = 6

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(OpenCXError):
    """The database cannot be opened or written (locked by another process, disk full)."""

    status_code = 503
    exit_code = 7
