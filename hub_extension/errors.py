"""The refusals of the platform: each says what to do instead, and carries its HTTP status.

Adapters turn them into answers (`{"error": {"code", "message"}}` in the REST
API, a page, a CLI message); the use cases raise them and nothing else.
"""
from __future__ import annotations


class PlatformError(Exception):
    """A request the platform refuses; the message says what to do instead."""

    status = 400
    code = "bad_request"


class NotFound(PlatformError):
    status = 404
    code = "not_found"


class Forbidden(PlatformError):
    status = 403
    code = "forbidden"


class LimitReached(PlatformError):
    status = 429
    code = "submission_limit"


class CountChanged(PlatformError):
    """A bulk act confirmed for a count that is no longer the count: nothing was done.

    `count` is the count now, and the answer carries it so the caller can ask again.
    """

    status = 409
    code = "CountChanged"

    def __init__(self, message: str, *, count: int, code: str = "CountChanged"):
        super().__init__(message)
        self.count = count
        self.code = code
        self.extra = {"count": count}


class Conflict(PlatformError):
    """A request the competition's state refuses now (an archived competition is read-only)."""

    status = 409
    code = "conflict"
