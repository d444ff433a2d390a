"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Views raise ``ApiError`` subclasses; pydantic errors (via flask-openapi3's callback), spec
problems, Werkzeug's HTTP errors (404, 405 with ``Allow``, 413, malformed JSON), a database
that is away or locked (503 with ``Retry-After``) and anything unexpected are all turned into
that shape here, so a client never sees an HTML page.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, jsonify, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from nncore import SpecError
from nncore.errors import join_path
from nncore.schema import field_path
from service.api import API_PREFIX
from service.db.transient import is_unavailable

log = logging.getLogger(__name__)

VALIDATION_STATUS = 422
BODY = "body"
LOGGED_ERROR_CHARS = 300


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[dict] | dict | None = None


class ErrorResponse(BaseModel):
    """What every 4xx/5xx carries; ``details`` lists ``{"field", "message"}`` for bad input."""

    error: ErrorInfo


UNAVAILABLE_STATUS = 503
# Every route may meet a database that is restarting; a client retries after this long.
DATABASE_RETRY_AFTER_S = 5
ERROR_STATUSES = (400, 401, 404, 413, VALIDATION_STATUS, UNAVAILABLE_STATUS)


def error_responses() -> dict:
    """The error statuses every route may answer, for the OpenAPI document."""
    return {status: ErrorResponse for status in ERROR_STATUSES}


class ApiError(Exception):
    """An expected failure with its HTTP status; the message is shown to the client."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details=None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Unprocessable(ApiError):
    status, code = 422, "validation_error"


class TooManyRequests(ApiError):
    """A quota is used up; ``Retry-After`` says when to try again."""

    status, code = 429, "too_many_requests"


def error_document(code: str, message: str, details=None) -> dict:
    """The error shape itself (also written where no Flask app runs: the WSGI middleware,
    gunicorn's own refusals)."""
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(status: int, code: str, message: str, details=None,
                   headers: dict | None = None):
    response = jsonify(error_document(code, message, details))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def database_unavailable_response():
    """503 for a database that is away, restarting or locked: nothing was changed by a
    request that failed before its commit, and a repeat with the same Idempotency-Key is safe."""
    return error_response(
        UNAVAILABLE_STATUS, "database_unavailable",
        f"the database is unavailable (restarting, unreachable or busy); retry in "
        f"{DATABASE_RETRY_AFTER_S} s", headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})


def invalid_response(problems: list[tuple[str, str]]):
    """422 naming every bad field; the message is "path: problem; path: problem"."""
    problems = [(path or BODY, msg) for path, msg in problems]
    message = "; ".join(f"{path}: {msg}" for path, msg in problems)
    details = [{"field": path, "message": msg} for path, msg in problems]
    return error_response(VALIDATION_STATUS, "validation_error", message, details)


def validation_error_callback(exc: ValidationError):
    """flask-openapi3's hook for pydantic failures of path, query or body models."""
    root = request.get_json(silent=True) if request.is_json else None
    problems = [(field_path(tuple(err["loc"]), root), err["msg"]) for err in exc.errors()]
    if not request.is_json and request.method in ("POST", "PUT") and any(not p for p, _ in problems):
        problems = [(BODY, "expected a JSON object with Content-Type: application/json")]
    return invalid_response(problems)


def check_json_body():
    """Before each request: a body declared as JSON must parse, else 400 naming the body."""
    if request.method not in ("POST", "PUT", "PATCH") or not request.is_json:
        return
    if not request.get_data(cache=True):
        return
    try:
        request.get_json()
    except HTTPException as exc:
        raise BadRequest(f"{BODY}: malformed JSON ({_json_problem(request.get_data())})") from exc
    except RecursionError as exc:
        raise BadRequest(f"{BODY}: JSON nested too deeply") from exc
    return


NUL = "\x00"
NUL_PROBLEM = "contains a NUL character, which no field accepts"
NUL_REFUSED = "cannot contain NUL"  # psycopg's words when PostgreSQL is handed one
# JSON can carry a NUL only as an escape (strict parsing refuses a raw control character),
# and a UTF-16 or UTF-32 body has NUL bytes: without either, parsed JSON has no NUL to find.
JSON_ESCAPE, JSON_NUL_ESCAPE, NUL_BYTE = b"\\", b"\\u0000", NUL.encode()


def refuse_nul_characters():
    """Before each API request: a NUL character is never valid input, and PostgreSQL refuses to
    store or even compare one, so it is a 422 naming where it was instead of a 500."""
    if not request.path.startswith(API_PREFIX):
        return None
    if NUL in request.path:
        return invalid_response([("path", NUL_PROBLEM)])
    for key, value in request.args.items(multi=True):
        if NUL in key or NUL in value:
            return invalid_response([(key.replace(NUL, "") or "query", NUL_PROBLEM)])
    for name, value in request.headers.items():
        if NUL in value:
            return invalid_response([(name, NUL_PROBLEM)])
    if request.is_json and _may_hold_nul(request.get_data(cache=True)):
        where = _nul_in(request.get_json(silent=True))
        if where is not None:
            return invalid_response([(where or BODY, NUL_PROBLEM)])
    if request.mimetype == "multipart/form-data":
        where = _nul_in_parts()
        if where is not None:
            return invalid_response([(where, NUL_PROBLEM)])
    return None


def _nul_in_parts() -> str | None:
    """The first form field, or JSON file part, of a multipart body that holds a NUL, by its
    dotted path (a binary part, an image or an .npz, is not text and is left alone)."""
    for name, value in request.form.items(multi=True):
        if NUL in name or NUL in value:
            return name.replace(NUL, "") or BODY
    for name, upload in request.files.items(multi=True):
        data = upload.read()
        upload.seek(0)
        if not _may_hold_nul(data):
            continue
        try:
            parsed = json.loads(data)
        except ValueError:  # binary, or not JSON: its reader answers for it
            continue
        where = _nul_in(parsed, name)
        if where is not None:
            return where
    return None


def _may_hold_nul(body: bytes) -> bool:
    """Whether a JSON body can hold a NUL: a scan of the bytes, not a walk of every value."""
    return NUL_BYTE in body or (JSON_ESCAPE in body and JSON_NUL_ESCAPE in body)


def _nul_in(value, path: str = "") -> str | None:
    """The dotted path of the first string (or key) holding a NUL in parsed JSON, else None."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((f"[{i}]", item) for i, item in enumerate(value))
    else:
        return None
    for key, item in items:
        where = join_path(path, str(key).replace(NUL, ""))
        if NUL in str(key):
            return where or BODY
        found = _nul_in(item, where)
        if found is not None:
            return found
    return None


def _json_problem(data: bytes) -> str:
    """The decoder's own words (Flask hides them outside debug mode)."""
    try:
        json.loads(data)
    except ValueError as exc:
        return str(exc)
    return "not decodable"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(SpecError)
    def _spec_error(exc: SpecError):
        return invalid_response(exc.problems)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.response is not None:
            return exc.response
        code = (exc.name or "error").lower().replace(" ", "_")
        # Werkzeug's own headers carry meaning: Allow on a 405, WWW-Authenticate, Retry-After.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return error_response(exc.code or 500, code, exc.description or exc.name or "error",
                              headers=headers)

    @app.errorhandler(SQLAlchemyError)
    def _database_error(exc: SQLAlchemyError):
        if NUL_REFUSED in str(getattr(exc, "orig", "")):
            return invalid_response([(BODY, NUL_PROBLEM)])  # a NUL the checks above missed
        if not is_unavailable(exc):
            return _unexpected(exc)
        log.warning("database unavailable on %s %s: %s", request.method, request.path,
                    " ".join(str(getattr(exc, "orig", None) or exc).split())[:LOGGED_ERROR_CHARS])
        return database_unavailable_response()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error; see the service log")
