"""How many Celery workers answer on a broker, known without waiting out a full ping.

A Celery ping collects replies until its timeout (it cannot know how many workers exist), so
asking on every health request costs that timeout each time. Instead each app keeps a census
per broker (``census``):

- while workers were seen, a request reads the last count at once; when it is older than
  ``SEEN_TTL_S`` one background ping brings it up to date;
- while none was seen (or none yet), a request asks with a probe that returns at the first
  answer and gives up after ``PROBE_TIMEOUT_S``, at most once per ``UNSEEN_TTL_S``; a probe
  that finds a worker starts the background ping that counts them all.

So a health request waits at most the probe's bound, and only while no worker is known. No
thread runs while nothing answers: a test that flushes its Redis DB afterwards gets no late
ping writing into it.

A Redis that restarted since the last ping closed the pooled connection: that ping is
retried at once on a new one instead of reporting every worker missing. A ping that still
fails leaves the last count in place, and the next request tries again.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import current_app

from service.api.deps import EXTENSION
from service.queue import client

log = logging.getLogger(__name__)

WORKER_PING_TIMEOUT_S = 1.0
PROBE_TIMEOUT_S = 0.25
# A count with workers in it is trusted this long; "no worker" is asked again sooner, so a
# worker that just started (or reconnected after a broker restart) shows up within a second.
SEEN_TTL_S = 10.0
UNSEEN_TTL_S = 1.0
CENSUSES = "worker_censuses"


def ping_workers(broker_url: str, *, timeout: float, limit: int | None = None) -> int:
    """Workers that answered a ping within ``timeout`` (returns early after ``limit``
    answers). A pooled connection that a broker restart closed fails once and is replaced,
    so one failure is retried at once; a second one raises."""
    control = client(broker_url).control
    try:
        replies = control.ping(timeout=timeout, limit=limit)
    except Exception as exc:  # noqa: BLE001 - redis, kombu and socket errors alike
        log.info("health: worker ping failed (%s); retrying on a new connection", exc)
        replies = control.ping(timeout=timeout, limit=limit)
    return len(replies or [])


class WorkerCensus:
    """The worker count on one broker."""

    def __init__(self, broker_url: str):
        self.broker_url = broker_url
        self._lock = threading.Lock()
        self._count: int | None = None
        self._checked_at = 0.0
        self._counting = False

    def count(self) -> int:
        """The latest count; see the module docstring for when it asks the broker."""
        with self._lock:
            known, age = self._count, time.monotonic() - self._checked_at
            recount = bool(known) and age >= SEEN_TTL_S and not self._counting
            probe = not known and (known is None or age >= UNSEEN_TTL_S)
        if recount:
            self._count_in_background()
        elif probe:
            self._probe()
        return self._count or 0

    def _store(self, count: int) -> None:
        with self._lock:
            self._count, self._checked_at = count, time.monotonic()

    def _probe(self) -> None:
        try:
            found = ping_workers(self.broker_url, timeout=PROBE_TIMEOUT_S, limit=1)
        except Exception as exc:  # noqa: BLE001 - any broker failure: keep the last count
            log.warning("health: worker ping on the broker failed: %s", exc)
            return
        self._store(found)
        if found:
            self._count_in_background()

    def _count_in_background(self) -> None:
        with self._lock:
            if self._counting:
                return
            self._counting = True
        threading.Thread(target=self._count_all, name="nnq-worker-census", daemon=True).start()

    def _count_all(self) -> None:
        try:
            self._store(ping_workers(self.broker_url, timeout=WORKER_PING_TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001 - any broker failure: keep the last count
            log.warning("health: worker ping on the broker failed: %s", exc)
        finally:
            with self._lock:
                self._counting = False


def census(broker_url: str) -> WorkerCensus:
    """The current app's census for ``broker_url`` (one per app, so per gunicorn worker)."""
    censuses = current_app.extensions[EXTENSION].setdefault(CENSUSES, {})
    if broker_url not in censuses:
        censuses[broker_url] = WorkerCensus(broker_url)
    return censuses[broker_url]
