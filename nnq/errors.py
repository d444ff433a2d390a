"""What can go wrong talking to the nnq API, as exceptions that say what to fix.

Every failure is an ``NnqError``. A response with the service's error shape
``{"error": {"code", "message", "details": [{"field", "message"}]}}`` becomes the subclass of
its status (``error_from_response``); ``str(err)`` is the line a user should read: the code and
message, then one ``  field: problem`` line per detail. Stdlib only (httpx stays in transport).
"""

from __future__ import annotations

import builtins
from typing import Any


class NnqError(Exception):
    """A request to the nnq API failed. ``status`` is the HTTP status (None when no response
    came), ``code`` the service's error code, ``details`` its details as sent."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 details: Any = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details


class BadRequest(NnqError):
    """400: the request itself was malformed (e.g. JSON that does not parse)."""


class Unauthorized(NnqError):
    """401: set NNQ_API_TOKEN (or ``Client(token=...)``) to the server's token."""


class NotFound(NnqError):
    """404: no such job, sweep, model or alias."""


class Conflict(NnqError):
    """409: the resource's state forbids it (cancel a finished job, an Idempotency-Key reused
    for another spec, promote a sweep without a succeeded trial)."""


class PayloadTooLarge(NnqError):
    """413: the body is over the server's limit (16 MiB); send fewer samples per request."""


class SpecError(NnqError, ValueError):
    """422: the spec or input is invalid. ``fields`` pairs each bad field's dotted path with
    its problem, e.g. ``[("train.optimizer.lr", "Input should be greater than 0")]``."""

    @property
    def fields(self) -> list[tuple[str, str]]:
        return [(field, message) for field, message in _detail_pairs(self.details)]

    @property
    def paths(self) -> list[str]:
        return [field for field, _ in self.fields]


class Unavailable(NnqError):
    """503: the service (or its database) is down for now; try again later."""


class ApiUnreachable(NnqError, builtins.ConnectionError):
    """No answer at all: nothing listens at the URL, the connection broke or timed out.
    The message names the URL; ``url`` holds it."""

    def __init__(self, message: str, url: str):
        super().__init__(message)
        self.url = url


BY_STATUS: dict[int, type[NnqError]] = {400: BadRequest, 401: Unauthorized, 404: NotFound,
                                        409: Conflict, 413: PayloadTooLarge, 422: SpecError,
                                        503: Unavailable}


def error_from_response(status: int, body: Any, text: str, reason: str) -> NnqError:
    """The exception for a 4xx/5xx answer: ``body`` is its parsed JSON (None if it was not
    JSON), ``text`` its raw text; anything without the error shape keeps its raw body."""
    cls = BY_STATUS.get(status, NnqError)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not error:
        shown = text.strip()[:500] or reason
        return cls(f"HTTP {status}: {shown}", status)
    code = error.get("code") or str(status)
    details = error.get("details")
    lines = [f"{code}: {error.get('message', '')}".rstrip(": ")]
    lines.extend(f"  {line}" for line in _detail_lines(details))
    return cls("\n".join(lines), status, code, details)


def _detail_pairs(details: Any) -> list[tuple[str, str]]:
    if not isinstance(details, list):
        return []
    pairs = []
    for item in details:
        if isinstance(item, dict) and ("field" in item or "loc" in item):
            where = item.get("field") or ".".join(str(p) for p in item.get("loc", []))
            pairs.append((where, str(item.get("message") or item.get("msg", ""))))
    return pairs


def _detail_lines(details: Any) -> list[str]:
    if not details:
        return []
    if isinstance(details, dict):
        return [f"{key}: {value}" for key, value in details.items()]
    if isinstance(details, list):
        lines = []
        for item in details:
            if isinstance(item, dict) and ("field" in item or "loc" in item):
                where = item.get("field") or ".".join(str(p) for p in item.get("loc", []))
                lines.append(f"{where}: {item.get('message') or item.get('msg', '')}")
            else:
                lines.append(str(item))
        return lines
    return [str(details)]
