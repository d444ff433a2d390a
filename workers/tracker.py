"""Callbacks that connect ``TrainingRun.fit`` to the job row, within a write budget.

Nothing here touches the database per iteration, and a running job's writes are few and
bounded in rate, so that one database serves a large fleet (docs/scale.md):

- one heartbeat thread makes one UPDATE every ``heartbeat_seconds`` (settings; at least
  three per lease): it renews the lease, writes progress and reads the cancel flag back.
  The training thread beats once itself, right after the first iteration, so a started
  job shows it at once;
- finished epochs are written at most every ``epoch_write_seconds``: the metrics rows and run
  records of every epoch since the last write in one transaction. The first epoch is
  written at once and the rest when training ends. A sweep trial writes every epoch: its
  pruner compares trials epoch by epoch;
- a write carries the checkpoint (the latest epoch's) when ``checkpoint_seconds`` have passed
  since the last one (or since the job started): megabytes, so their rate is bounded apart.

A database that is away or locked for a while (``service.db.transient``) does not end the
attempt: a failed epoch write keeps its epochs and is tried again at the next epoch while
training goes on, and the last write when training ends is retried with backoff for up to
``NNQ_DB_RETRY_SECONDS`` (``retry_transient``, which the worker's other writes use too).

The lease is tied to progress, not only to the process being alive: when no iteration has
completed for ``NNQ_STALL_SECONDS`` the heartbeat stops renewing it, so a hung training loop
loses its job to another worker; its own later writes are refused by the owner check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Self, TypeVar

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nncore.training import EpochRecord
from service.db import jobs as store
from service.db.scope import transaction
from service.db.transient import is_unavailable
from service.settings import settings

log = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3
RETRY_FIRST_DELAY_S = 0.5
RETRY_MAX_DELAY_S = 5.0
T = TypeVar("T")


def retry_transient(sessions: sessionmaker[Session], write: Callable[[Session], T], what: str,
                    seconds: float | None = None) -> T:
    """``write(session)`` on a fresh session, again with backoff while it fails because the
    database is away or locked, for up to ``seconds`` (``NNQ_DB_RETRY_SECONDS``); other
    errors, and the last transient one, are raised."""
    seconds = settings().db_retry_seconds if seconds is None else seconds
    deadline, delay = time.monotonic() + seconds, RETRY_FIRST_DELAY_S
    while True:
        try:
            with sessions() as session:
                return write(session)
        except SQLAlchemyError as exc:
            if not is_unavailable(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s: database unavailable (%s); retrying in %.1f s", what,
                        type(exc).__name__, delay)
        time.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_DELAY_S)


class Pruned(Exception):
    """A sweep trial stopped early by its sweep's pruner; the message is the reason."""


class JobTracker:
    """Progress, cancel and lease (the heartbeat) and the epochs' rows for one claimed job.

    ``heartbeat_seconds``, ``epoch_write_seconds`` and ``checkpoint_seconds`` default to the
    settings.
    """

    def __init__(self, sessions: sessionmaker[Session], job_id: int, owner: str,
                 lease_seconds: float, checkpoint: Callable[[], bytes],
                 clock: Callable[[], float] = time.monotonic,
                 prune: Callable[[], str | None] | None = None, *,
                 heartbeat_seconds: float | None = None,
                 epoch_write_seconds: float | None = None,
                 checkpoint_seconds: float | None = None,
                 stall_seconds: float | None = None):
        config = settings()
        self.sessions, self.job_id, self.owner = sessions, job_id, owner
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = min(heartbeat_seconds or config.heartbeat_seconds,
                                     lease_seconds / RENEWALS_PER_LEASE)
        self.epoch_write_seconds = (config.epoch_write_seconds if epoch_write_seconds is None
                                    else epoch_write_seconds)
        self.checkpoint_seconds = (config.checkpoint_seconds if checkpoint_seconds is None
                                   else checkpoint_seconds)
        self.stall_seconds = config.stall_seconds if stall_seconds is None else stall_seconds
        self._checkpoint, self._clock, self._prune = checkpoint, clock, prune
        self._last_progress = time.monotonic()  # the watchdog's clock is always the real one
        self._stalled = False
        self._session = sessions()
        self._progress: dict | None = None
        self._pending: list[tuple[dict, EpochRecord | None]] = []
        self._last_epoch_write = float("-inf")
        self._last_checkpoint = clock() if self.checkpoint_seconds else float("-inf")
        self._cancel = False
        self._handed_over = False
        self._lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, daemon=True,
                                        name=f"heartbeat-{job_id}")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Write the epochs still pending (rows only: after ``fit`` the network may hold the
        best epoch's weights, not the last one's), then stop the heartbeat. After
        ``hand_over_pending`` a clean exit leaves them to ``write_pending`` instead."""
        try:
            if exc_type is None:
                if not self._handed_over:
                    self._write_until_done()
            elif self._pending and not issubclass(exc_type, store.LeaseLost):
                try:
                    self.write_epochs(with_checkpoint=False)
                except (store.LeaseLost, SQLAlchemyError):  # the first error is the story
                    log.warning("job %s: finished epochs not written", self.job_id,
                                exc_info=True)
        finally:
            self._done.set()
            self._thread.join()
            self._session.close()

    def _heartbeat(self) -> None:
        with self.sessions() as session:
            while not self._done.wait(self.heartbeat_seconds):
                if self.stalled():
                    continue  # the lease runs out and the reconciler moves the job
                if not self.beat(session):
                    return

    def stalled(self) -> bool:
        """Whether training completed no iteration (or epoch) for ``stall_seconds``; logged
        once per stall."""
        idle = time.monotonic() - self._last_progress
        stalled = idle > self.stall_seconds
        if stalled and not self._stalled:
            log.error("job %s: no training progress for %.0f s (NNQ_STALL_SECONDS=%g); the "
                      "lease is no longer renewed", self.job_id, idle, self.stall_seconds)
        self._stalled = stalled
        return stalled

    def beat(self, session: Session) -> bool:
        """One heartbeat write; False once the job is lost (the heartbeat then stops)."""
        try:
            cancel = store.heartbeat(session, self.job_id, self.owner, self.lease_seconds,
                                     self._progress)
        except SQLAlchemyError as exc:  # a DB blip: the next beat tries again
            log.warning("job %s: heartbeat failed (%s)", self.job_id, exc.__class__.__name__,
                        exc_info=not is_unavailable(exc))
            return True
        if cancel is None:
            self._lost.set()
            return False
        self._cancel = self._cancel or cancel
        return True

    def _check_owned(self) -> None:
        if self._lost.is_set():
            raise store.LeaseLost(f"job {self.job_id}: lease lost to another worker")

    def on_iteration(self, progress: dict) -> None:
        """Keep the progress for the next heartbeat; after the first iteration, beat at once,
        from this thread (the heartbeat thread would wait for the interpreter lock while
        training holds it)."""
        first = self._progress is None
        self._progress = dict(progress)
        self._last_progress = time.monotonic()
        if first:
            self.beat(self._session)

    def should_stop(self) -> bool:
        self._check_owned()
        return self._cancel

    def on_epoch(self, metrics: dict, record: EpochRecord | None = None) -> None:
        """Keep the epoch's metrics row and record; write them when ``epoch_write_seconds``
        has passed since the last write (at once for the first epoch and for a sweep trial),
        with a checkpoint that resumes at the next epoch when ``checkpoint_seconds`` has.

        Then, for a sweep trial, ask ``prune`` (it reads the row just written) and raise
        Pruned with its reason; a DB blip there skips this epoch's check, not the attempt.
        """
        self._check_owned()
        self._last_progress = time.monotonic()
        self._pending.append((metrics, record))
        due = self._clock() - self._last_epoch_write >= self.epoch_write_seconds
        if not due and self._prune is None:
            return
        written = self._write_or_keep(
            with_checkpoint=self._clock() - self._last_checkpoint >= self.checkpoint_seconds)
        if self._prune is None or not written:
            return
        try:
            reason = self._prune()
        except DBAPIError:
            log.warning("job %s: pruning check failed", self.job_id, exc_info=True)
            return
        if reason:
            raise Pruned(reason)

    def _write_or_keep(self, *, with_checkpoint: bool) -> bool:
        """``write_epochs``; when the database is away or locked, keep the epochs for the next
        write and go on training (False)."""
        pending = list(self._pending)
        try:
            self.write_epochs(with_checkpoint=with_checkpoint)
        except SQLAlchemyError as exc:
            if not is_unavailable(exc):
                raise
            self._pending = pending + self._pending
            log.warning("job %s: database unavailable (%s); %d epoch(s) kept for the next "
                        "write", self.job_id, type(exc).__name__, len(self._pending))
            return False
        return True

    def _write_until_done(self) -> None:
        """The last write, when training ended: retried with backoff while the database is
        away (``retry_transient``), each try on a fresh session."""
        pending = list(self._pending)

        def write(session: Session) -> None:
            self._pending = list(pending)
            self.write_epochs(with_checkpoint=False, session=session)

        retry_transient(self.sessions, write, f"job {self.job_id}: epochs")

    def hand_over_pending(self) -> list:
        """Leave the epochs still pending to the caller's own transaction (the final model's:
        one transaction per job fewer) instead of a write of their own on a clean exit;
        returns them, for ``write_pending``."""
        self._handed_over = True
        return list(self._pending)

    def write_pending(self, session: Session, pending: list) -> None:
        """``pending`` (from ``hand_over_pending``) written on ``session``, joining its open
        transaction; the same rows, owner check and progress as the tracker's own write."""
        self._pending = list(pending)
        self.write_epochs(with_checkpoint=False, session=session)

    def write_epochs(self, *, with_checkpoint: bool, session: Session | None = None) -> None:
        """The pending epochs' rows in one transaction (on ``session``, default the
        tracker's); the checkpoint (taken now) goes with the last of them. Raises LeaseLost,
        writing nothing, when the job is no longer ours; after any error the epochs are
        dropped (the caller keeps them to try again)."""
        session = session or self._session
        pending, self._pending = self._pending, []
        if not pending:
            return
        checkpoint = self._checkpoint() if with_checkpoint else None
        progress = self._progress or {}
        last = len(pending) - 1
        with transaction(session):
            for i, (metrics, record) in enumerate(pending):
                store.record_epoch(
                    session, self.job_id, self.owner, metrics,
                    checkpoint if i == last else None, record=record,
                    iteration=progress.get("iteration") if i == last else None,
                    total_iterations=progress.get("total_iterations") if i == last else None)
        self._last_epoch_write = self._clock()
        if checkpoint is not None:
            self._last_checkpoint = self._last_epoch_write

