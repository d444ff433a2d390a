"""nnq's Celery workers: ``celery -A workers worker -Q cpu`` (or ``-Q gpu``).

``app`` is the Celery app; importing this package registers the train task and
the reconciler that runs inside every worker.
"""

from workers.celery_app import app
from workers import reconcile, train  # noqa: F401  (registers the task and signal handlers)

__all__ = ["app"]
