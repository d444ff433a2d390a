"""The Celery app: Redis broker, JSON only, late acks, one message at a time.

A task message carries only a job id; the database row is the truth. Late acks
with ``reject_on_worker_lost`` keep a killed worker's message in Redis, but it
returns only after the visibility timeout, which is why ``workers.reconcile``
also re-enqueues jobs whose lease expired.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

BROKER_URL_ENV = "NNQ_BROKER_URL"
DEFAULT_BROKER_URL = "redis://localhost:6379/0"
VISIBILITY_TIMEOUT_ENV = "NNQ_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY_TIMEOUT_S = 3600  # longer than any epoch; the reconciler covers faster
TRAIN_TASK = "nnq.train_job"
QUEUES = ("cpu", "gpu")


def broker_url() -> str:
    return os.environ.get(BROKER_URL_ENV) or DEFAULT_BROKER_URL


def make_celery() -> Celery:
    """A configured app; tasks register when ``workers.train`` is imported."""
    app = Celery("nnq", broker=broker_url(), include=["workers.train"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="cpu",
        task_queues=[Queue(name) for name in QUEUES],
        task_routes={TRAIN_TASK: {"queue": "cpu"}},
        broker_transport_options={
            "visibility_timeout": int(os.environ.get(VISIBILITY_TIMEOUT_ENV)
                                      or DEFAULT_VISIBILITY_TIMEOUT_S),
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
        worker_send_task_events=False,
    )
    return app


app = make_celery()
