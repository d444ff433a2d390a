"""Early stopping of sweep trials, decided from the sibling trials' epoch_metrics rows.

A worker asks ``should_prune`` right after it recorded a trial's epoch k. The decision uses
only rows already in the database, so it is the same whichever worker asks, and it never
looks at test accuracy (the sweep's metric cannot be ``test_acc``).

- ``median``: after ``warmup_epochs``, once at least ``min_trials`` other trials have an
  epoch-k row, stop the trial if its metric at k is below the median of theirs at k.
- ``asha`` (asynchronous successive halving): rungs at epochs ``min_epochs * eta**i``
  (``eta`` = ``reduction_factor``). At a rung the trial goes on only if its metric is in the
  top ``1/eta`` of all trials that have reached that rung so far, itself included. While fewer
  than ``eta`` trials have reached a rung there is nothing to halve, so the trial goes on:
  the first trials are never stopped for lack of company.
- ``none``: never.

A trial at its final epoch is never pruned: it has done all its training and keeps its model.
A missing metric value (NaN stored as NULL) ranks below every number.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import EpochMetric, Job, Sweep
from service.db.scope import transactional
from service.sweeps.validate import METRICS, PRUNER_DEFAULTS

DEFAULT_METRIC = "val_acc"


def pruner_config(request: Mapping[str, Any]) -> dict[str, Any]:
    """The stored request's ``pruner`` and ``pruner_options`` as ``{"type": ..., **options}``,
    defaults filled (older rows may lack options)."""
    kind = str(request.get("pruner") or "none")
    return {"type": kind, **PRUNER_DEFAULTS.get(kind, {}),
            **(request.get("pruner_options") or {})}


def _value(value: float | None) -> float:
    return -math.inf if value is None else float(value)


def median_decision(value: float | None, others: Sequence[float | None], epoch: int, *,
                    metric: str, warmup_epochs: int, min_trials: int, **_: Any) -> str | None:
    """The median rule for one trial at ``epoch`` against the other trials' values there."""
    peers = [v for v in others if v is not None]
    if epoch <= warmup_epochs or len(peers) < max(1, min_trials):
        return None
    median = statistics.median(peers)
    if _value(value) >= median:
        return None
    shown = "none" if value is None else f"{value:.4f}"
    return (f"pruned at epoch {epoch} by the median rule: {metric} {shown} is below the median "
            f"{median:.4f} of {len(peers)} other trial(s) at that epoch")


def is_rung(epoch: int, min_epochs: int, reduction_factor: int) -> bool:
    """Whether ``epoch`` is ``min_epochs * reduction_factor**i`` for some i >= 0."""
    rung = max(1, min_epochs)
    while rung < epoch:
        rung *= max(2, reduction_factor)
    return rung == epoch


def asha_decision(value: float | None, others: Sequence[float | None], epoch: int, *,
                  metric: str, min_epochs: int, reduction_factor: int, **_: Any) -> str | None:
    """Successive halving at a rung: continue only in the top 1/eta of the rung so far."""
    eta = max(2, int(reduction_factor))
    if not is_rung(epoch, int(min_epochs), eta):
        return None
    reached = len(others) + 1
    if reached < eta:
        return None
    keep = max(1, reached // eta)
    better = sum(1 for v in others if _value(v) > _value(value))
    if better < keep:
        return None
    shown = "none" if value is None else f"{value:.4f}"
    return (f"pruned at rung epoch {epoch} by ASHA (reduction factor {eta}): {metric} {shown} "
            f"is not in the top {keep} of the {reached} trial(s) that reached this rung")


DECISIONS = {"median": median_decision, "asha": asha_decision}


def decide(config: Mapping[str, Any], value: float | None, others: Sequence[float | None],
           epoch: int, final_epoch: int | None, metric: str = DEFAULT_METRIC) -> str | None:
    """The pure decision: a reason to stop, or None to go on."""
    rule = DECISIONS.get(str(config.get("type")))
    if rule is None or (final_epoch is not None and epoch >= final_epoch):
        return None
    options = {k: v for k, v in config.items() if k != "type"}
    return rule(value, others, epoch, metric=metric, **options)


def _final_epoch(spec: Mapping[str, Any] | None) -> int | None:
    epochs = ((spec or {}).get("train") or {}).get("epochs")
    return int(epochs) if isinstance(epochs, int) else None


@transactional
def should_prune(session: Session, job: Job) -> str | None:
    """Whether the sweep trial ``job`` should stop after its latest recorded epoch.

    Returns the human-readable reason (stored as the job's error) or None. Jobs outside a
    sweep, sweeps without a pruner and a trial's final epoch are never pruned. One read
    transaction, like the store functions.
    """
    if job.sweep_id is None:
        return None
    sweep = session.get(Sweep, job.sweep_id, populate_existing=True)
    if sweep is None:
        return None
    config = pruner_config(sweep.request)
    if config["type"] not in DECISIONS:
        return None
    metric = sweep.metric if sweep.metric in METRICS else DEFAULT_METRIC
    column = getattr(EpochMetric, metric)
    own = session.execute(
        select(EpochMetric.epoch, column).where(EpochMetric.job_id == job.id)
        .order_by(EpochMetric.epoch.desc()).limit(1)).first()
    if own is None:
        return None
    epoch, value = own
    others = list(session.scalars(
        select(column).join(Job, Job.id == EpochMetric.job_id)
        .where(Job.sweep_id == job.sweep_id, Job.id != job.id, EpochMetric.epoch == epoch)))
    return decide(config, value, others, epoch, _final_epoch(job.spec), metric)
