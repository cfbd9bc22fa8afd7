"""Errors that services raise and that pages and the API turn into responses.

Each carries a stable ``code`` (API clients switch on it), an HTTP status, a
message for people, and, for bad input, where the input was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    loc: str
    message: str


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class InvalidInput(ServiceError):
    status = 422
    code = "validation_error"

    @classmethod
    def at(cls, loc: str, message: str) -> InvalidInput:
        return cls(message, problems=[Problem(loc, message)])


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"
