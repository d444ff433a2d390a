"""A job claimed by OWNER, as a worker holds one while it trains."""

import pytest

from service.db import jobs as store

SPEC = {"data": {"dataset": "synthetic"}, "model": {"preset": "mlp", "hidden": [8]}}
LEASE_S = 60
OWNER = "me"


@pytest.fixture
def claimed(sessions):
    with sessions() as session:
        job = store.create_job(session, SPEC, "cpu")[0]
        store.claim_job(session, job.id, OWNER, LEASE_S)
        return job.id
