"""A database that goes away, restarts or stays locked gets a 503 with Retry-After (never a 500,
never a hang), loses no committed row, and is used again as soon as it is back.

PostgreSQL runs as a private cluster made with initdb and pg_ctl (tests.chaos.cluster, shared
with the workers' restart tests), so stopping it leaves the shared server alone.
SQLite is locked by a second connection holding the write lock: SQLite itself retries for
the busy timeout, and only a lock held longer than that is a 503.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from service import create_app
from service.db import engine_for
from service.sweeps.scheduler import advance_all
from tests import support
from tests.chaos.cluster import private_cluster
from tests.chaos.faults import hold_sqlite_write_lock
from tests.service.test_bad_input import GOOD, assert_error

LOCK_HELD_S = 1.0
SHORT_BUSY_TIMEOUT_MS = 100  # SQLite gives up waiting for the lock well before it is free
SWEEP_PARALLELISM = 2
SWEEP = {"name": "s", "base": GOOD, "space": {"train.seed": {"grid": [1, 2, 3]}},
         "parallelism": SWEEP_PARALLELISM}


@pytest.fixture
def cluster():
    with private_cluster() as pg:
        yield pg


def assert_unavailable(response) -> None:
    error = assert_error(response, 503, "database")
    assert error["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_postgres_stopped_mid_test_is_503_then_back_with_every_row(cluster, redis_url):
    client = create_app({"NNQ_DATABASE_URL": cluster.url, "NNQ_BROKER_URL": redis_url,
                         "TESTING": True}).test_client()
    assert client.post("/api/v1/jobs", json=GOOD).status_code == 202
    assert client.get("/api/v1/jobs").get_json()["total"] == 1

    cluster.stop()
    assert_unavailable(client.get("/api/v1/jobs"))
    assert_unavailable(client.get("/api/v1/jobs?name=x&status=queued"))
    assert_unavailable(client.get("/api/v1/jobs/1"))
    assert_unavailable(client.post("/api/v1/jobs", json=GOOD))
    assert_unavailable(client.post("/api/v1/sweeps", json=SWEEP))
    assert_unavailable(client.get("/api/v1/models"))
    health = client.get("/api/v1/health")
    assert health.status_code == 503 and health.get_json()["db"] is False

    cluster.start()
    jobs = client.get("/api/v1/jobs")
    assert jobs.status_code == 200 and jobs.get_json()["total"] == 1  # nothing lost
    assert client.post("/api/v1/jobs", json=GOOD).status_code == 202
    assert client.get("/api/v1/health").get_json()["db"] is True


def sqlite_app(tmp_path, redis_url, name: str):
    """(client, path, url): the app on a fresh SQLite file."""
    path = tmp_path / name
    url = f"sqlite:///{path}"
    support.migrate(url)
    app = create_app({"NNQ_DATABASE_URL": url, "NNQ_BROKER_URL": redis_url, "TESTING": True})
    return app.test_client(), path, url


def test_a_locked_sqlite_is_waited_for_and_the_request_succeeds(tmp_path, redis_url):
    client, path, url = sqlite_app(tmp_path, redis_url, "waits.db")
    holder = hold_sqlite_write_lock(path, LOCK_HELD_S)
    r = client.post("/api/v1/jobs", json=GOOD)  # SQLite retries the lock until it is free
    holder.join()
    assert r.status_code == 202, r.get_data(as_text=True)
    assert client.get("/api/v1/jobs").get_json()["total"] == 1
    engine_for(url).dispose()


def test_a_sqlite_locked_past_its_busy_timeout_is_503_not_500(tmp_path, redis_url,
                                                               monkeypatch):
    monkeypatch.setenv("NNQ_SQLITE_BUSY_TIMEOUT_MS", str(SHORT_BUSY_TIMEOUT_MS))
    client, path, url = sqlite_app(tmp_path, redis_url, "short-timeout.db")
    holder = hold_sqlite_write_lock(path, LOCK_HELD_S)
    assert_unavailable(client.post("/api/v1/jobs", json=GOOD))
    holder.join()
    assert client.get("/api/v1/jobs").get_json()["total"] == 0
    assert client.post("/api/v1/jobs", json=GOOD).status_code == 202
    engine_for(url).dispose()


DROP_CONNECTION_ON_JOB_INSERT = """
CREATE FUNCTION nnq_test_drop_connection() RETURNS trigger AS $$
BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER nnq_test_drop_connection BEFORE INSERT ON jobs
FOR EACH ROW EXECUTE FUNCTION nnq_test_drop_connection();
"""


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_database_error_while_a_sweep_starts_its_trials_is_503(client, database_url,
                                                                  sessions, redis_url):
    """The sweep is stored; its first trial jobs are refused by the database: the server
    drops the connection the moment a job row is inserted."""
    with engine_for(database_url).begin() as conn:
        conn.execute(text(DROP_CONNECTION_ON_JOB_INSERT))
    headers = {"Idempotency-Key": "sweep-during-outage"}
    assert_unavailable(client.post("/api/v1/sweeps", json=SWEEP, headers=headers))
    with engine_for(database_url).begin() as conn:
        conn.execute(text("DROP TRIGGER nnq_test_drop_connection ON jobs"))
    sweeps = client.get("/api/v1/sweeps").get_json()
    counts = sweeps["items"][0]["counts"]
    assert sweeps["total"] == 1 and counts["pending"] == counts["total"] > 0  # none started
    sweep_id = sweeps["items"][0]["id"]
    again = client.post("/api/v1/sweeps", json=SWEEP, headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == sweep_id
    advance_all(sessions(), broker_url=redis_url)  # the workers' reconciler round
    counts = client.get(f"/api/v1/sweeps/{sweep_id}").get_json()["counts"]
    assert counts["queued"] == SWEEP_PARALLELISM
