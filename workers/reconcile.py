"""The reconciler: re-enqueue jobs a dead worker left behind, from inside every worker.

Redis gives a killed worker's unacked message back only after the visibility
timeout (an hour), so each worker also runs this loop in a daemon thread every
half lease: a running job whose lease expired goes back to ``queued`` and gets a
new message (the conditional UPDATE lets exactly one worker do it), and a queued
job nobody touched for ``requeue_after_seconds`` (settings) gets its message sent again
(a lost message; duplicates are harmless because claims are exclusive). Sooner than that, a
queued job whose device queue on the broker is empty gets its message again on the next
round once it is ``UNSENT_AFTER_S`` old: its message was never sent (the API accepted it
while the broker was down) or was lost with a broker that restarted without its data, and
idle workers should not wait ``requeue_after_seconds`` for it.
It needs no beat process: plain ``celery -A workers worker`` runs it. Each round
also advances every unfinished sweep (``service.sweeps.scheduler.advance_all``), so
a sweep goes on after any process restarts: the sweep tables are the plan.

Every worker runs the loop, but one round per period is enough for the whole fleet: the
worker that first sets ``ROUND_KEY`` on the broker for the period runs it (``claim_round``),
the others only check that the database answers, which is all the outage hold below needs.
On 1,000 workers that is one round's writes per period instead of a thousand, all queueing
on the same sweep rows (docs/scale.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from celery.signals import worker_ready, worker_shutdown

from service.db import jobs as store
from service.db import session_factory
from service.db.engine import ping
from service.db.transient import is_unavailable
from service.queue import QUEUES, enqueue, waiting_messages
from service.settings import settings
from service.sweeps.scheduler import advance_all

log = logging.getLogger(__name__)

# The reconciler runs this many times per lease, so an expired lease is noticed within it.
ROUNDS_PER_LEASE = 2
# A queued job with no message on the broker is re-sent once it is this old (or half a lease,
# if less): far longer than the API takes from its commit to its send.
UNSENT_AFTER_S = 5.0
# The broker key whose holder runs the period's round; it expires a little before the period
# ends, so the holder's next attempt finds it free unless another worker took it first.
ROUND_KEY = "nnq:reconciler:round"
ROUND_KEY_SHARE = 0.9
BROKER_TIMEOUT_S = 2.0
_stop = threading.Event()


def claim_round(broker_url: str, interval: float, owner: str) -> bool:
    """Whether this worker runs this period's round: the first to set ``ROUND_KEY`` does.
    True when the broker cannot be asked (then every worker runs its own, as before)."""
    import redis

    try:
        conn = redis.Redis.from_url(broker_url, socket_connect_timeout=BROKER_TIMEOUT_S,
                                    socket_timeout=BROKER_TIMEOUT_S)
        try:
            return bool(conn.set(ROUND_KEY, owner, nx=True,
                                 px=max(1, int(interval * ROUND_KEY_SHARE * 1000))))
        finally:
            conn.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        log.warning("could not claim the reconciler round at %s (%s); running it here",
                    broker_url, exc)
        return True


def reconcile_once(sessions=None, *, requeue_leases: bool = True) -> list[int]:
    """One pass; returns the ids it re-enqueued. ``requeue_leases=False`` leaves expired
    leases alone (just after a database outage, see ``_loop``)."""
    sessions = sessions or session_factory()
    config = settings()
    resent = []
    with sessions() as session:
        for job in store.expired_leases(session) if requeue_leases else ():
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
        resent += _resend_unsent(session, min(UNSENT_AFTER_S,
                                              config.lease_seconds / ROUNDS_PER_LEASE),
                                 config.broker_url)
        advance_all(session, broker_url=config.broker_url)
    return resent


def _resend_unsent(session, older_than: float, broker_url: str) -> list[int]:
    """Re-send queued jobs older than ``older_than`` whose device queue on the broker is
    empty: no message waits for them, so none would ever arrive."""
    resent = []
    for device in QUEUES:
        if waiting_messages(device, broker_url=broker_url) != 0:
            continue  # messages wait (or the broker is away): nothing to tell apart
        for job in store.stale_queued(session, older_than, device):
            if (store.touch_queued(session, job.id, older_than)
                    and enqueue(job.id, job.device, broker_url=broker_url)):
                log.warning("job %s: queued with no message on the broker; message re-sent",
                            job.id)
                resent.append(job.id)
    return resent


def _loop(interval: float, lease: float) -> None:
    """Reconcile every ``interval``. After a pass failed because the database was away, the
    leases that ran out meanwhile belong to workers that could not renew them, not to dead
    ones: expired leases are left alone for one lease after the database answers again, time
    for every live worker's heartbeat to renew its lease."""
    outage, hold_until = False, 0.0
    owner = f"{socket.gethostname()}:{os.getpid()}"
    while not _stop.wait(interval):
        requeue = not outage and time.monotonic() >= hold_until
        try:
            if claim_round(settings().broker_url, interval, owner):
                reconcile_once(requeue_leases=requeue)
            else:  # a round trip: fails as a round would while the database is away
                with session_factory()() as session:
                    ping(session)
        except Exception as exc:  # the DB or broker is briefly away: try again next round
            outage = outage or is_unavailable(exc)
            log.warning("reconciler pass failed (%s)", type(exc).__name__,
                        exc_info=not is_unavailable(exc))
            continue
        if outage:
            outage, hold_until = False, time.monotonic() + lease
            log.warning("database back: expired leases are requeued again after %.0f s", lease)


@worker_ready.connect
def start_reconciler(**_kwargs) -> None:
    _stop.clear()
    lease = settings().lease_seconds
    threading.Thread(target=_loop, args=(lease / ROUNDS_PER_LEASE, lease),
                     daemon=True, name="nnq-reconciler").start()


@worker_shutdown.connect
def stop_reconciler(**_kwargs) -> None:
    _stop.set()
