"""JobTracker hands an epoch's record to the store with its metrics row and checkpoint, in one
transaction: a record that cannot be stored leaves no row of that epoch behind."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from nncore.training import EpochRecord
from service.db import ActivationStat, Checkpoint, EpochMetric, IterationLoss
from tests.workers.conftest import LEASE_S, OWNER
from workers.tracker import JobTracker

ROW = {"epoch": 1, "train_loss": 2.0, "train_acc": 0.2, "val_acc": 0.1, "test_acc": 0.1,
       "seconds": 0.1}
STAT = {"layer": 0, "name": "0 affine", "type": "affine", "mean": 0.0, "std": 1.0,
        "edges": [-1.0, 0.0, 1.0], "counts": [2, 2]}


def _counts(sessions):
    with sessions() as session:
        return [session.scalar(select(func.count()).select_from(table))
                for table in (EpochMetric, Checkpoint, IterationLoss, ActivationStat)]


def test_the_epoch_record_is_written_with_the_metrics_row(sessions, claimed):
    record = EpochRecord(epoch=1, losses=((1, 2.5), (2, 2.25)), activations=(STAT,),
                         probe_size=4)
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes) as tracker:
        tracker.on_epoch(ROW, record)
    assert _counts(sessions) == [1, 1, 2, 1]


def test_a_record_the_store_refuses_takes_the_metrics_row_and_checkpoint_with_it(
        sessions, claimed):
    twice = EpochRecord(epoch=1, losses=((1, 2.5), (1, 2.5)), activations=(STAT,),
                        probe_size=4)
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes) as tracker:
        with pytest.raises(IntegrityError):
            tracker.on_epoch(ROW, twice)
    assert _counts(sessions) == [0, 0, 0, 0]
