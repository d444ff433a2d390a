"""The one place the store commits or rolls back.

Every store function runs in ``transaction(session)`` (or is ``@transactional``): it commits
when the outermost scope on that session ends and rolls back if anything raised. Scopes nest:
a store function called from another joins the caller's transaction (a depth count in
``session.info``), so a scheduler round that creates several jobs still commits once.
An error inside a nested scope dooms the whole transaction: catch it outside the outermost
scope. (Savepoints would isolate it, but pysqlite commits on releasing a savepoint that
began its transaction.) Ending every read too keeps no snapshot or "idle in transaction"
connection between calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

P = ParamSpec("P")
R = TypeVar("R")

_DEPTH = "nnq.scope_depth"


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """Commit at the end of the outermost scope, roll back on any error; inner scopes join."""
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        yield session
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
        raise
    finally:
        session.info[_DEPTH] = depth


def in_scope(session: Session) -> bool:
    """Whether a ``transaction`` scope is open on ``session`` (a call would join it)."""
    return session.info.get(_DEPTH, 0) > 0


def transactional(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Session, P], R]:
    """Run a store function (session first) in ``transaction(session)``."""
    @functools.wraps(fn)
    def scoped(session: Session, *args: P.args, **kwargs: P.kwargs) -> R:
        with transaction(session):
            return fn(session, *args, **kwargs)

    return scoped
