"""Create a row at most once per idempotency key (jobs and sweeps share this)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db.models import Job, Sweep
from service.db.scope import in_scope, transaction, transactional

Keyed = TypeVar("Keyed", Job, Sweep)


@transactional
def _by_key(session: Session, model: type[Keyed], key: str) -> Keyed | None:
    return session.scalar(select(model).where(model.idempotency_key == key))


def create_once(session: Session, model: type[Keyed], key: str | None,
                make: Callable[[], Keyed]) -> tuple[Keyed, bool]:
    """Insert ``make()`` with idempotency ``key`` unless a row has it; ``(row, created)``.

    ``make`` runs only when the key is new (or None), so a repeated request is neither
    validated nor built again. When a concurrent request inserts the same key first, the
    unique constraint fails ours; called in its own transaction this returns the winner's
    row, called inside another one the IntegrityError dooms that and propagates.
    """
    try:
        with transaction(session):
            if key is not None and (existing := _by_key(session, model, key)) is not None:
                return existing, False
            row = make()
            row.idempotency_key = key
            session.add(row)
            session.flush()
            return row, True
    except IntegrityError:
        if key is None or in_scope(session):
            raise
        existing = _by_key(session, model, key)
        if existing is None:
            raise
        return existing, False
