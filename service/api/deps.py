"""Per-request resources the views share: the DB session and app settings."""

from __future__ import annotations

import logging

from flask import current_app, g
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

EXTENSION = "nnq"


def db() -> Session:
    """This request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = current_app.extensions[EXTENSION]["sessions"]()
    return g.db


def close_db(_exc=None) -> None:
    """At teardown; a connection the database dropped must not turn the answer into a 500."""
    session = g.pop("db", None)
    if session is None:
        return
    try:
        session.close()
    except SQLAlchemyError as exc:
        log.warning("closing the request's database session failed: %s", exc)


def setting(key: str):
    return current_app.config.get(key)
