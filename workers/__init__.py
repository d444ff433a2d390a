"""nnq's Celery workers: ``celery -A workers worker -Q cpu`` (or ``-Q gpu``).

``app`` is the Celery app; importing this package registers the train task and
the reconciler that runs inside every worker.

Each worker process trains with one BLAS thread unless OPENBLAS_NUM_THREADS (or
OMP/MKL_NUM_THREADS) says otherwise: hosts run one worker process per core (a sweep's
trials side by side), and two processes with a BLAS thread per core each make
OpenBLAS spin against itself — measured 50x slower per step on 2 cores. It must be
set before numpy loads, hence here, first.
"""

import os

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
WORKER_BLAS_THREADS = "1"
for _variable in BLAS_THREAD_VARIABLES:
    os.environ.setdefault(_variable, WORKER_BLAS_THREADS)

from workers.celery_app import app  # noqa: E402
from workers import reconcile, train  # noqa: E402,F401  (registers the task and signal handlers)

__all__ = ["BLAS_THREAD_VARIABLES", "WORKER_BLAS_THREADS", "app"]
