"""Any request body over ``MAX_CONTENT_LENGTH`` gets 413 in the API's error shape, chunked or
not, and the client sending it actually reads that answer.

Werkzeug reads a chunked body (which has no length) only up to the limit and then stops,
silently: the prefix of an oversized body would be parsed as if it were the whole. So this
WSGI middleware reads a chunked body itself, up to one byte past the limit, and hands the app
the body with its Content-Length when it fits.

A declared Content-Length over the limit is refused here too, after reading and dropping the
body: answering before the body is read makes gunicorn close the connection under a client
that is still sending, which then sees a reset instead of the 413. Only up to
``DRAIN_LIMIT_BYTES`` is read that way; a longer body is cut off by closing the connection.
"""

from __future__ import annotations

import io
import json

from flask import Flask

from service.errors import error_document

READ_CHUNK_BYTES = 1024 * 1024
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
TOO_LARGE = "413 Request Entity Too Large"


def _declared_length(environ: dict) -> int | None:
    try:
        return int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _is_chunked(environ: dict) -> bool:
    return (not environ.get("CONTENT_LENGTH")
            and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower())


def _read_at_most(stream, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only when the body ends first."""
    parts, left = [], size
    while left > 0:
        part = stream.read(min(left, READ_CHUNK_BYTES))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _drain(stream, size: int) -> None:
    """Read and drop up to ``size`` bytes."""
    while size > 0:
        part = stream.read(min(size, READ_CHUNK_BYTES))
        if not part:
            return
        size -= len(part)


def _json_error(start_response, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps(error_document(code, message)).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))), ("Connection", "close")])
    return [body]


def _too_large(start_response, limit: int) -> list[bytes]:
    return _json_error(start_response, TOO_LARGE, "request_entity_too_large",
                       f"body: more than {limit} bytes; the limit is {limit}")


class BodyLimit:
    """Wraps ``app.wsgi_app``; reads the limit from ``app.config`` on each request."""

    def __init__(self, app: Flask):
        self.app = app
        self.wsgi_app = app.wsgi_app

    def __call__(self, environ: dict, start_response):
        limit = self.app.config.get("MAX_CONTENT_LENGTH")
        if limit is None:
            return self.wsgi_app(environ, start_response)
        stream = environ["wsgi.input"]
        declared = _declared_length(environ)
        try:
            if declared is not None and declared > limit:
                _drain(stream, min(declared, DRAIN_LIMIT_BYTES))
                return _too_large(start_response, limit)
            if not _is_chunked(environ):
                return self.wsgi_app(environ, start_response)
            body = _read_at_most(stream, limit + 1)
            if len(body) > limit:
                _drain(stream, DRAIN_LIMIT_BYTES)
                return _too_large(start_response, limit)
        except (OSError, ValueError):
            return _json_error(start_response, "400 Bad Request", "bad_request",
                               "body: malformed chunked transfer encoding or cut short")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.wsgi_app(environ, start_response)
