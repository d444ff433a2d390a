"""A page of rows, newest first, with the total: what every list endpoint shows."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import Job, Model, Sweep

DEFAULT_PAGE_SIZE = 50
Listed = TypeVar("Listed", Job, Model, Sweep)


def newest_first(session: Session, model: type[Listed], where: list[Any], limit: int,
                 offset: int) -> tuple[list[Listed], int]:
    """Rows of ``model`` matching ``where`` by descending id, and how many match in all."""
    total = session.scalar(select(func.count()).select_from(model).where(*where))
    rows = list(session.scalars(select(model).where(*where).order_by(model.id.desc())
                                .limit(limit).offset(offset)))
    return rows, int(total or 0)
