"""The one way a job reaches the workers: ``enqueue`` its id on its device's queue.

The API, the sweep scheduler, the worker's retry and the reconciler all send through here,
without importing ``workers``; ``workers.celery_app`` takes the task name, the queues and the
serialisation from here too. The DB row is the truth and the message only carries the job id,
so a broker that is down loses nothing: the job stays ``queued`` and the workers' reconciler
re-sends it as soon as the broker answers again with that device's queue empty
(``waiting_messages``; ``workers.reconcile``). Sending therefore never raises; it logs and
reports False.
"""

from __future__ import annotations

import functools
import logging

from celery import Celery

from service.settings import settings

log = logging.getLogger(__name__)

TRAIN_TASK = "nnq.train_job"
DEFAULT_QUEUE = "cpu"
QUEUES = {"cpu": "cpu", "gpu": "gpu"}  # a spec's device -> the queue its workers read
JSON_ONLY = {"task_serializer": "json", "result_serializer": "json",
             "accept_content": ["json"], "result_accept_content": ["json"]}
CONNECT_TIMEOUT_S = 2.0
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


def queue_for(device: str) -> str:
    return QUEUES.get(device, DEFAULT_QUEUE)


@functools.cache
def client(broker_url: str) -> Celery:
    """A producer-only Celery app for ``broker_url`` (JSON, like the workers)."""
    app = Celery("nnq-producer", broker=broker_url, set_as_current=False)
    app.conf.update(
        **JSON_ONLY,
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        broker_transport_options={"socket_connect_timeout": CONNECT_TIMEOUT_S,
                                  "socket_timeout": CONNECT_TIMEOUT_S},
    )
    return app


def enqueue(job_id: int, device: str, *, broker_url: str | None = None,
            countdown: float | None = None) -> bool:
    """Send ``nnq.train_job(job_id)`` to the device's queue, after the row is committed.

    ``broker_url`` defaults to ``settings().broker_url``; ``countdown`` delays delivery
    (seconds). False when the broker could not be reached.
    """
    url = broker_url or settings().broker_url
    try:
        client(url).send_task(TRAIN_TASK, args=[job_id], queue=queue_for(device),
                              countdown=countdown, retry=True,
                              retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as exc:  # noqa: BLE001 - any broker failure leaves the job to the reconciler
        log.warning("job %s: could not reach the broker at %s (%s); it stays queued for the "
                    "reconciler", job_id, url, exc)
        return False
    return True


def waiting_messages(device: str, *, broker_url: str | None = None) -> int | None:
    """How many messages wait in the device's queue on the broker; None when the broker
    could not be reached. A message a worker holds (running or delayed) is not counted."""
    url = broker_url or settings().broker_url
    try:
        with client(url).connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            with connection.channel() as channel:
                return channel.queue_declare(queue=queue_for(device)).message_count
    except Exception as exc:  # noqa: BLE001 - an unreachable broker is an answer, not a crash
        log.warning("could not count the %s queue at %s (%s)", device, url, exc)
        return None
