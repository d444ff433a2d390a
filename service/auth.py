"""Bearer-token check for mutating requests, active only when NNQ_API_TOKEN is set."""

from __future__ import annotations

import hmac

from flask import current_app, request

from service.errors import Unauthorized

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def require_token() -> None:
    """Before each request: POST/PUT/... need ``Authorization: Bearer <NNQ_API_TOKEN>``."""
    token = current_app.config.get("NNQ_API_TOKEN")
    if not token or request.method not in MUTATING:
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("Authorization: a valid 'Bearer <token>' header is required")
    return None
