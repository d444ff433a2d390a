"""Trained models in the store: list, read, their tensors, and aliases pointing at them.

Like service.db.jobs, each function is one transaction (``service.db.scope``). Writing a
model is the worker's ``jobs.finish_job``; everything else about models is here.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from service.db.models import Alias, Model, ModelTensor, utcnow
from service.db.paging import DEFAULT_PAGE_SIZE, newest_first
from service.db.scope import transactional


class NoSuchModel(LookupError):
    """An alias was pointed at a model id that does not exist."""


@transactional
def get_model(session: Session, model_id: int) -> Model | None:
    """The model row (architecture and metrics; tensors are read separately)."""
    return session.get(Model, model_id)


@transactional
def list_models(session: Session, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
                ) -> tuple[list[Model], int]:
    """A page of models, newest first, and how many there are."""
    return newest_first(session, Model, [], limit, offset)


@transactional
def aliases_of(session: Session, model_ids: list[int]) -> dict[int, list[str]]:
    """``{model id: alias names, sorted}``; a model without aliases maps to []."""
    names: dict[int, list[str]] = defaultdict(list)
    rows = session.execute(select(Alias.model_id, Alias.name)
                           .where(Alias.model_id.in_(model_ids)).order_by(Alias.name))
    for model_id, name in rows:
        names[model_id].append(name)
    return names


@transactional
def alias_target(session: Session, name: str) -> int | None:
    """The model id the alias points at now, or None for an unknown alias."""
    alias = session.get(Alias, name, populate_existing=True)
    return None if alias is None else alias.model_id


@transactional
def tensors(session: Session, model_id: int, *, with_data: bool = True) -> list[ModelTensor]:
    """The model's tensor rows in storage order; ``with_data=False`` leaves the bytes unread
    (a tensor list), else decode them with ``tensors.state_from_rows``."""
    query = select(ModelTensor).where(ModelTensor.model_id == model_id).order_by(ModelTensor.id)
    if not with_data:
        query = query.options(defer(ModelTensor.data, raiseload=True))
    return list(session.scalars(query))


@transactional
def set_alias(session: Session, name: str, model_id: int) -> Alias:
    """Point alias ``name`` at ``model_id``, creating or moving it; raises NoSuchModel."""
    if session.get(Model, model_id) is None:
        raise NoSuchModel(f"no model {model_id}")
    alias = session.get(Alias, name)
    if alias is None:
        alias = Alias(name=name, model_id=model_id)
        session.add(alias)
    else:
        alias.model_id, alias.updated_at = model_id, utcnow()
    session.flush()
    return alias
