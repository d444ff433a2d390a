"""Rank a sweep's trials by its metric and pick the best; plain data, no DB.

A trial's score is the metric's value at the epoch its stored model holds (the best epoch by
validation accuracy with ``train.keep_best``, else the last), so the ranking describes what
promote would serve. Trials without a model (pruned, running, failed) rank with their last
recorded value; trials without one come last.
Test accuracy is shown, never used here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nnq.status import TRIAL_STATUSES, JobStatus


@dataclass
class TrialResult:
    """One trial as the API shows it; ``curve`` is its epoch rows, oldest first.

    ``chosen`` is False while an adaptive strategy has yet to choose the trial's parameters
    (it does when the trial starts); ``sampler_attrs`` is what that sampler noted on the trial.
    """

    index: int
    params: dict[str, Any]
    status: str
    job_id: int | None = None
    model_id: int | None = None
    error: str | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)
    chosen: bool = True
    sampler_attrs: dict[str, Any] = field(default_factory=dict)
    model_metrics: dict[str, Any] = field(default_factory=dict)

    def score(self, key: str) -> float | None:
        """``key`` at the stored model's epoch when the trial has a model, else ``last``."""
        if self.model_metrics.get(key) is not None:
            return float(self.model_metrics[key])
        return self.last(key)

    def last(self, key: str) -> float | None:
        """The newest non-null value of ``key`` (an epoch_metrics column)."""
        for row in reversed(self.curve):
            if row.get(key) is not None:
                return float(row[key])
        return None

    @property
    def epochs(self) -> int:
        return max((int(row["epoch"]) for row in self.curve), default=0)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "job_id": self.job_id, "params": self.params,
                "status": self.status, "val_acc": self.score("val_acc"),
                "train_acc": self.score("train_acc"), "test_acc": self.score("test_acc"),
                "epochs": self.epochs, "model_id": self.model_id, "error": self.error,
                "chosen": self.chosen}


def rank(trials: list[TrialResult], metric: str) -> list[TrialResult]:
    """Best first by the metric's score; ties and trials without one by index."""
    def key(trial: TrialResult):
        score = trial.score(metric)
        return (score is None, -(score or 0.0), trial.index)

    return sorted(trials, key=key)


def best(trials: list[TrialResult], metric: str) -> TrialResult | None:
    """The highest-scoring succeeded trial, or None while no trial has succeeded."""
    done = [t for t in trials
            if t.status == JobStatus.SUCCEEDED and t.score(metric) is not None]
    ranked = rank(done, metric)
    return ranked[0] if ranked else None


def counts(trials: list[TrialResult]) -> dict[str, int]:
    """How many trials are in each status, plus ``total``."""
    by_status = Counter(t.status for t in trials)
    return {**{s: by_status.get(s, 0) for s in TRIAL_STATUSES}, "total": len(trials)}
