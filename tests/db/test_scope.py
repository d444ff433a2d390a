"""The store's one transaction scope and its idempotent create (SQLite and PostgreSQL)."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from service.db import Job, idempotent, transaction
from service.db import jobs as store

SPEC = {"name": "scope-test", "data": {"dataset": "synthetic", "samples": 100},
        "model": {"preset": "mlp", "hidden": [8]}, "train": {"epochs": 1, "batch_size": 10}}


@pytest.fixture
def session(sessions):
    with sessions() as s:
        yield s


def _job_count(sessions) -> int:
    with sessions() as other:
        return other.scalar(select(func.count()).select_from(Job))


def test_nested_store_calls_commit_once_at_the_outer_scope(sessions, session):
    with transaction(session):
        store.create_job(session, SPEC)
        store.create_job(session, SPEC)
        assert _job_count(sessions) == 0, "an inner scope committed"
    assert _job_count(sessions) == 2


def test_an_error_in_the_scope_rolls_everything_back(sessions, session):
    with pytest.raises(RuntimeError), transaction(session):
        store.create_job(session, SPEC)
        raise RuntimeError("boom")
    assert _job_count(sessions) == 0
    store.create_job(session, SPEC)
    assert _job_count(sessions) == 1


def _lose_the_first_lookup(monkeypatch):
    """The key lookup misses once, as when another request inserts the key just after it."""
    real, calls = idempotent._by_key, []

    def lookup(session, model, key):
        calls.append(key)
        return None if len(calls) == 1 else real(session, model, key)

    monkeypatch.setattr(idempotent, "_by_key", lookup)


def test_a_lost_race_for_a_key_returns_the_winner(sessions, session, monkeypatch):
    with sessions() as other:
        winner, _ = store.create_job(other, SPEC, idempotency_key="race")
    _lose_the_first_lookup(monkeypatch)
    job, created = store.create_job(session, SPEC, idempotency_key="race")
    assert (job.id, created) == (winner.id, False)
    assert _job_count(sessions) == 1


def test_a_lost_race_inside_a_transaction_rolls_it_back(sessions, session, monkeypatch):
    with sessions() as other:
        store.create_job(other, SPEC, idempotency_key="race")
    _lose_the_first_lookup(monkeypatch)
    with pytest.raises(IntegrityError), transaction(session):
        store.create_job(session, SPEC)
        store.create_job(session, SPEC, idempotency_key="race")
    assert _job_count(sessions) == 1


def test_create_once_builds_nothing_for_a_known_key(session):
    made = []

    def make() -> Job:
        made.append(1)
        return Job(name="x", spec=SPEC)

    first, created = idempotent.create_once(session, Job, "k", make)
    again, created_again = idempotent.create_once(session, Job, "k", make)
    assert (created, created_again, again.id, len(made)) == (True, False, first.id, 1)
