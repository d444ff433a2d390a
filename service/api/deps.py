"""Per-request resources the views share: the DB session and app settings."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

EXTENSION = "nnq"


def db() -> Session:
    """This request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = current_app.extensions[EXTENSION]["sessions"]()
    return g.db


def close_db(_exc=None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def setting(key: str):
    return current_app.config.get(key)
