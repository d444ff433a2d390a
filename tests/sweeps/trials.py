"""Give sweep trials jobs and epoch rows through the job store, the way the scheduler and a
worker would, so reads, plots and promote have real data without running training."""

from __future__ import annotations

from sqlalchemy import select, update

import nncore
from service.db import SweepTrial
from service.db.jobs import claim_job, create_job, fail_job, finish_job, record_epoch

OWNER = "sweep-test"
LEASE_S = 60
TINY_MODEL = {"preset": "mlp", "hidden": [8]}


def trial_job(sessions, sweep_id: int, index: int) -> int:
    """The trial's job id, creating the job (once) if the scheduler has not yet."""
    with sessions() as session:
        trial = session.scalar(select(SweepTrial).where(SweepTrial.sweep_id == sweep_id,
                                                        SweepTrial.index == index))
        if trial.job_id is None:
            job, _ = create_job(session, trial.spec, device=trial.spec["device"],
                                name=trial.spec["name"], sweep_id=sweep_id)
            session.execute(update(SweepTrial).where(SweepTrial.id == trial.id,
                                                     SweepTrial.job_id.is_(None))
                            .values(job_id=job.id))
            session.commit()
        return session.scalar(select(SweepTrial.job_id).where(SweepTrial.id == trial.id))


def run_trial(sessions, sweep_id: int, index: int, val_accs: list[float], *,
              outcome: str = "succeeded") -> int:
    """Claim the trial's job, record one epoch row per ``val_accs`` value, then end it
    ``succeeded`` (with a tiny stored model), ``failed``, or leave it ``running``."""
    job_id = trial_job(sessions, sweep_id, index)
    with sessions() as session:
        assert claim_job(session, job_id, OWNER, LEASE_S) is not None
        for epoch, val_acc in enumerate(val_accs, start=1):
            record_epoch(session, job_id, OWNER,
                         {"epoch": epoch, "train_acc": val_acc, "val_acc": val_acc,
                          "test_acc": val_acc - 0.01, "train_loss": 1.0 - val_acc,
                          "seconds": 0.1}, b"checkpoint")
        if outcome == "succeeded":
            net = nncore.build(TINY_MODEL, (784,), 10, seed=index)
            finish_job(session, job_id, OWNER, net, {"val_acc": val_accs[-1]}, None)
        elif outcome == "failed":
            fail_job(session, job_id, "diverged", owner=OWNER)
    return job_id
