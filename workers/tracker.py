"""Callbacks that connect ``TrainingRun.fit`` to the job row, cheaply.

An iteration can take well under a millisecond, so nothing here touches the
database per iteration: progress is written at most every PROGRESS_INTERVAL_S,
the cancel flag is read at most every CANCEL_POLL_S, and the lease is renewed
by a heartbeat thread (it also covers long evaluations between iterations).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from nncore.training import EpochRecord
from service.db import jobs as store

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5
CANCEL_POLL_S = 0.3
RENEWALS_PER_LEASE = 3


class Pruned(Exception):
    """A sweep trial stopped early by its sweep's pruner; the message is the reason."""


class JobTracker:
    """Progress, metrics + checkpoint per epoch, cancel and lease for one claimed job."""

    def __init__(self, sessions: sessionmaker[Session], job_id: int, owner: str,
                 lease_seconds: float, checkpoint: Callable[[], bytes],
                 clock: Callable[[], float] = time.monotonic,
                 prune: Callable[[], str | None] | None = None):
        self.sessions, self.job_id, self.owner = sessions, job_id, owner
        self._prune = prune
        self.lease_seconds = lease_seconds
        self._checkpoint, self._clock = checkpoint, clock
        self._session = sessions()
        self._progress = {"epoch": 0, "iteration": 0, "total_iterations": 0}
        self._last_write = self._last_poll = float("-inf")
        self._cancel = False
        self._lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, daemon=True,
                                        name=f"lease-{job_id}")

    def __enter__(self) -> JobTracker:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self._session.close()

    def _heartbeat(self) -> None:
        """Renew the lease every lease/3 s until training ends or the job is lost."""
        with self.sessions() as session:
            while not self._done.wait(self.lease_seconds / RENEWALS_PER_LEASE):
                try:
                    if not store.renew_lease(session, self.job_id, self.owner,
                                             self.lease_seconds):
                        self._lost.set()
                        return
                except DBAPIError:  # a DB blip: the next beat tries again
                    log.warning("job %s: lease renewal failed", self.job_id, exc_info=True)

    def _check_owned(self) -> None:
        if self._lost.is_set():
            raise store.LeaseLost(f"job {self.job_id}: lease lost to another worker")

    def on_iteration(self, progress: dict) -> None:
        self._progress = dict(progress)
        now = self._clock()
        if now - self._last_write < PROGRESS_INTERVAL_S:
            return
        self._last_write = now
        try:
            owned = store.record_progress(self._session, self.job_id, self.owner,
                                          progress["epoch"], progress["iteration"],
                                          progress["total_iterations"])
        except DBAPIError:  # a DB blip costs one progress update, not the attempt
            log.warning("job %s: progress write failed", self.job_id, exc_info=True)
            return
        if not owned:
            self._lost.set()

    def should_stop(self) -> bool:
        self._check_owned()
        now = self._clock()
        if not self._cancel and now - self._last_poll >= CANCEL_POLL_S:
            self._last_poll = now
            try:
                self._cancel = store.cancel_requested(self._session, self.job_id)
            except DBAPIError:  # asked again at the next poll
                log.warning("job %s: cancel poll failed", self.job_id, exc_info=True)
        return self._cancel

    def on_epoch(self, metrics: dict, record: EpochRecord | None = None) -> None:
        """The epoch's metrics row, its record (kept losses, activation statistics) and a
        checkpoint that resumes at the next epoch, in one transaction.

        Then, for a sweep trial, ask ``prune`` (it reads the row just written) and raise
        Pruned with its reason; a DB blip there skips this epoch's check, not the attempt.
        """
        self._check_owned()
        store.record_epoch(self._session, self.job_id, self.owner, metrics, self._checkpoint(),
                           iteration=self._progress.get("iteration"),
                           total_iterations=self._progress.get("total_iterations"),
                           record=record)
        if self._prune is None:
            return
        try:
            reason = self._prune()
        except DBAPIError:
            log.warning("job %s: pruning check failed", self.job_id, exc_info=True)
            return
        if reason:
            raise Pruned(reason)
