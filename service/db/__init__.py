"""nnq's store: SQLAlchemy models, engines and the job lifecycle. No Flask here,
so a worker host needs only this package and nncore."""

from service.db.engine import (
    database_url,
    engine_for,
    make_engine,
    normalize_url,
    session_factory,
)
from service.db.models import (
    JOB_STATUSES,
    SWEEP_STATUSES,
    SWEEP_TERMINAL_STATUSES,
    TERMINAL_STATUSES,
    Alias,
    Base,
    Checkpoint,
    EpochMetric,
    Job,
    Model,
    ModelTensor,
    Sweep,
    SweepTrial,
    utcnow,
)

__all__ = [
    "JOB_STATUSES", "SWEEP_STATUSES", "SWEEP_TERMINAL_STATUSES", "TERMINAL_STATUSES", "Alias",
    "Base", "Checkpoint", "EpochMetric", "Job", "Model", "ModelTensor", "Sweep", "SweepTrial",
    "database_url", "engine_for", "make_engine", "normalize_url", "session_factory", "utcnow",
]
