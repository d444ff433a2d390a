"""Revision 0003 adds the run-record tables next to existing rows, and takes them away again."""

from alembic import command
from sqlalchemy import insert, inspect

from service.db import Job, make_engine, session_factory, utcnow
from service.db import jobs as store
from service.db.attempts import job_attempts
from tests.support import alembic_config

RUN_RECORD_TABLES = {"iteration_losses", "activation_stats", "job_attempts"}
LEASE_S = 60


def test_jobs_from_before_0003_stay_valid_and_gain_attempts_when_claimed(database_url):
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0002")
    engine = make_engine(database_url)
    try:
        assert not RUN_RECORD_TABLES & set(inspect(engine).get_table_names())
        now = utcnow()
        with engine.begin() as conn:
            job_id = conn.execute(insert(Job.__table__).values(
                name="old", status="queued", spec={}, device="cpu", attempts=0,
                max_attempts=3, epoch=0, iteration=0, total_iterations=0,
                cancel_requested=False, created_at=now, updated_at=now)).inserted_primary_key[0]
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
    with session_factory(database_url)() as session:
        assert job_attempts(session, job_id) == []
        assert store.claim_job(session, job_id, "host:1:token", LEASE_S) is not None
        assert [a.attempt for a in job_attempts(session, job_id)] == [1]
    command.downgrade(cfg, "0002")
    engine = make_engine(database_url)
    try:
        assert not RUN_RECORD_TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
