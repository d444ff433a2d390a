"""`Job.wait` returns failed and cancelled jobs (status tells), times out, and draws a bar."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from nnq.status import JobStatus
from tests.client.conftest import WAIT_S, spec

pytestmark = pytest.mark.integration


@pytest.mark.timeout(180)
def test_wait_returns_a_failed_job_with_its_reason(client, worker, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    worker(env={"NNQ_DATA_DIR": str(empty)})
    job = client.submit(spec(data={"dataset": "mnist", "val_fraction": 0.1}))
    out = io.StringIO()
    assert job.wait(timeout=WAIT_S, console=Console(file=out, width=120)) is job
    assert job.status == JobStatus.FAILED and job.error and job.model_id is None
    assert f"job {job.id}" in out.getvalue()


def test_wait_returns_a_cancelled_job_and_times_out_on_a_queued_one(client):
    job = client.submit(spec())  # no worker: it stays queued
    with pytest.raises(TimeoutError):
        job.wait(timeout=0.3, progress=False, poll=0.1)
    assert job.status == JobStatus.QUEUED
    assert job.cancel() is job and job.status == JobStatus.CANCELLED
    assert job.wait(timeout=5, progress=False) is job
    assert client.job(job.id).status == JobStatus.CANCELLED
