"""Enqueue training jobs for the workers without importing them.

The DB row is the truth and the message only carries the job id, so a broker that is down
at submit time loses nothing: the job stays ``queued`` and the workers' reconciler re-sends
stale queued jobs. Sending therefore never fails a request; it logs and reports False.
"""

from __future__ import annotations

import functools
import logging

from celery import Celery

log = logging.getLogger(__name__)

TRAIN_TASK = "nnq.train_job"
QUEUES = {"cpu": "cpu", "gpu": "gpu"}
CONNECT_TIMEOUT_S = 2.0
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


@functools.cache
def client(broker_url: str) -> Celery:
    """A producer-only Celery app for ``broker_url`` (JSON, like the workers)."""
    app = Celery("nnq-api", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json", accept_content=["json"],
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        broker_transport_options={"socket_connect_timeout": CONNECT_TIMEOUT_S,
                                  "socket_timeout": CONNECT_TIMEOUT_S},
    )
    return app


def enqueue_job(broker_url: str, job_id: int, device: str = "cpu") -> bool:
    """Send ``nnq.train_job(job_id)`` to the device's queue; call after the row is committed."""
    queue = QUEUES.get(device, "cpu")
    try:
        client(broker_url).send_task(TRAIN_TASK, args=[job_id], queue=queue,
                                     retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:  # noqa: BLE001 - any broker failure leaves the job to the reconciler
        log.warning("job %s: could not reach the broker at %s (%s); it stays queued for the "
                    "reconciler", job_id, broker_url, exc)
        return False
    return True
