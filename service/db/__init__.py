"""nnq's store: SQLAlchemy models, engines, the transaction scope and the store functions.
No Flask here, so a worker host needs only this package and nncore."""

from service.db.engine import (
    database_url,
    engine_for,
    make_engine,
    normalize_url,
    session_factory,
)
from service.db.models import (
    MAX_ID,
    METRIC_FIELDS,
    ActivationStat,
    Alias,
    Base,
    Checkpoint,
    EpochMetric,
    IterationLoss,
    Job,
    JobAttempt,
    Model,
    ModelTensor,
    Sweep,
    SweepTrial,
    utcnow,
)
from service.db.scope import transaction, transactional

__all__ = [
    "MAX_ID", "METRIC_FIELDS", "ActivationStat", "Alias", "Base", "Checkpoint", "EpochMetric",
    "IterationLoss", "Job", "JobAttempt", "Model",
    "ModelTensor", "Sweep", "SweepTrial", "database_url", "engine_for", "make_engine",
    "normalize_url", "session_factory", "transaction", "transactional", "utcnow",
]
