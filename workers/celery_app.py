"""The Celery app: Redis broker, JSON only, late acks, one message at a time.

A task message carries only a job id; the database row is the truth. Late acks
with ``reject_on_worker_lost`` keep a killed worker's message in Redis, but it
returns only after the visibility timeout, which is why ``workers.reconcile``
also re-enqueues jobs whose lease expired.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from service.queue import DEFAULT_QUEUE, JSON_ONLY, QUEUES, TRAIN_TASK
from service.settings import settings


def make_celery() -> Celery:
    """A configured app; tasks register when ``workers.train`` is imported."""
    config = settings()
    app = Celery("nnq", broker=config.broker_url, include=["workers.train"])
    app.conf.update(
        **JSON_ONLY,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE,
        task_queues=[Queue(name) for name in QUEUES.values()],
        task_routes={TRAIN_TASK: {"queue": DEFAULT_QUEUE}},
        broker_transport_options={"visibility_timeout": config.visibility_timeout},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
        worker_send_task_events=False,
    )
    return app


app = make_celery()
