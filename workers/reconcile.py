"""The reconciler: re-enqueue jobs a dead worker left behind, from inside every worker.

Redis gives a killed worker's unacked message back only after the visibility
timeout (an hour), so each worker also runs this loop in a daemon thread every
half lease: a running job whose lease expired goes back to ``queued`` and gets a
new message (the conditional UPDATE lets exactly one worker do it), and a queued
job nobody touched for ``requeue_after_seconds`` (settings) gets its message sent again
(a lost message; duplicates are harmless because claims are exclusive).
It needs no beat process: plain ``celery -A workers worker`` runs it. Each round
also advances every unfinished sweep (``service.sweeps.scheduler.advance_all``), so
a sweep goes on after any process restarts: the sweep tables are the plan.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

from service.db import jobs as store
from service.db import session_factory
from service.queue import enqueue
from service.settings import settings
from service.sweeps.scheduler import advance_all

log = logging.getLogger(__name__)

# The reconciler runs this many times per lease, so an expired lease is noticed within it.
ROUNDS_PER_LEASE = 2
_stop = threading.Event()


def reconcile_once(sessions=None) -> list[int]:
    """One pass; returns the ids it re-enqueued."""
    sessions = sessions or session_factory()
    config = settings()
    resent = []
    with sessions() as session:
        for job in store.expired_leases(session):
            owner = job.lease_owner
            if store.requeue_expired(session, job.id):
                log.warning("job %s: lease of %s expired; re-enqueued to resume", job.id, owner)
                enqueue(job.id, job.device, broker_url=config.broker_url)
                resent.append(job.id)
        after = config.requeue_after_seconds
        for job in store.stale_queued(session, after):
            if store.touch_queued(session, job.id, after):
                log.warning("job %s: queued for over %.0f s; message re-sent", job.id, after)
                enqueue(job.id, job.device, broker_url=config.broker_url)
                resent.append(job.id)
        advance_all(session, broker_url=config.broker_url)
    return resent


def _loop(interval: float) -> None:
    while not _stop.wait(interval):
        try:
            reconcile_once()
        except Exception:  # the DB or broker is briefly away: try again next round
            log.warning("reconciler pass failed", exc_info=True)


@worker_ready.connect
def start_reconciler(**_kwargs) -> None:
    _stop.clear()
    threading.Thread(target=_loop, args=(settings().lease_seconds / ROUNDS_PER_LEASE,),
                     daemon=True, name="nnq-reconciler").start()


@worker_shutdown.connect
def stop_reconciler(**_kwargs) -> None:
    _stop.set()
