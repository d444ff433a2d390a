"""The service tests' fixtures (an app on a fresh migrated database with a real Redis broker,
a model stored through the job store), and helpers that put jobs where the pages read them."""

from __future__ import annotations

import re

import pytest

from service.db.jobs import (
    claim_job,
    create_job,
    fail_job,
    record_epoch,
    record_progress,
)
from tests.service.conftest import app, client, synthetic, trained  # noqa: F401  (fixtures)

OWNER = "dashboard-test"
LEASE_S = 60
SPEC = {"name": "mlp", "data": {"dataset": "synthetic", "samples": 200},
        "model": {"preset": "mlp", "hidden": [16], "batchnorm": True}, "train": {"epochs": 3}}


def add_job(sessions, name: str = "mlp", spec: dict | None = None, **kwargs) -> int:
    """A queued job, as POST /jobs stores one; returns its id."""
    with sessions() as session:
        job, _ = create_job(session, {**(spec or SPEC), "name": name}, name=name, **kwargs)
        return job.id


def run_job(sessions, job_id: int, train_accs: list[float], *, fail: str | None = None) -> None:
    """Claim the job, record one epoch per accuracy (test 0.1 lower) and progress; with
    ``fail``, end it failed with that reason."""
    with sessions() as session:
        assert claim_job(session, job_id, OWNER, LEASE_S) is not None
        for epoch, acc in enumerate(train_accs, start=1):
            record_epoch(session, job_id, OWNER,
                         {"epoch": epoch, "train_loss": 1 - acc, "train_acc": acc,
                          "val_acc": acc - 0.05, "test_acc": acc - 0.1, "seconds": 0.5},
                         b"checkpoint")
        record_progress(session, job_id, OWNER, len(train_accs), 10 * len(train_accs), 30)
        if fail:
            fail_job(session, job_id, fail, owner=OWNER)


def job_ids(html: str) -> list[int]:
    """The ids of the rows of the jobs table, in page order."""
    return [int(i) for i in re.findall(r'<tr data-job-id="(\d+)"', html)]


@pytest.fixture
def page(client):  # noqa: F811  (the imported fixture)
    """GET a dashboard page: (status, HTML text)."""
    def get(path: str) -> tuple[int, str]:
        response = client.get(path)
        return response.status_code, response.get_data(as_text=True)

    return get
