"""Bearer-token check for mutating requests, active only when NNQ_API_TOKEN is set.

The token is compared in constant time (digests of equal length, ``hmac.compare_digest``), so
neither its bytes nor its length leak through response timing, and it is never logged: no
message here or in the error handlers includes a header.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from flask import current_app, request

from service.errors import Unauthorized

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


def token_matches(given: str, token: str) -> bool:
    """Whether ``given`` is ``token``, taking the same time whatever either holds."""
    return hmac.compare_digest(_digest(given), _digest(token))


def require_token() -> None:
    """Before each request: POST/PUT/... need ``Authorization: Bearer <NNQ_API_TOKEN>``."""
    token = current_app.config.get("NNQ_API_TOKEN")
    if not token or request.method not in MUTATING:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(given.strip(), token):
        log.info("refused %s %s from %s: no valid bearer token", request.method, request.path,
                 request.remote_addr)
        raise Unauthorized("Authorization: a valid 'Bearer <token>' header is required",
                           headers={"WWW-Authenticate": "Bearer"})
    return
