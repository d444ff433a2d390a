"""Early stopping of sweep trials: Optuna's pruners, fed with nnq's per-epoch metric rows.

A worker asks ``should_prune`` right after it recorded a trial's epoch. The sweep's trials are
replayed into a fresh study (service.sweeps.study) and the sweep's Optuna pruner decides for
the asking trial at its latest epoch; the rows are the only input, so the answer is the same
whichever worker asks, after any restart. Test accuracy is never read (the sweep's metric
cannot be ``test_acc``). Epoch k is Optuna's step k.

- ``median`` / ``percentile``: Optuna's MedianPruner / PercentilePruner. After
  ``warmup_epochs``, once ``min_trials`` succeeded trials have a value at epoch k, a trial
  whose best value so far is below their median (the ``100 - percentile``-th percentile: the
  top ``percentile`` % go on) stops.
- ``asha``: Optuna's SuccessiveHalvingPruner. Rungs at epochs
  ``min_epochs * reduction_factor**i``; at a rung a trial goes on only if its value is in the
  top ``1/reduction_factor`` of the trials that reached that rung so far (while fewer than
  ``reduction_factor`` have, only if it is the best of them).
- ``hyperband``: Optuna's HyperbandPruner, several such halvings (brackets) that start at
  different rungs, up to the base's epochs; a trial's bracket follows from its index.
- ``none``: never.

Successive halving notes each trial's value at each rung it reached on the trial; replaying
every trial's epochs in order through the pruner rebuilds those notes. A trial at its final
epoch is never pruned: it has done all its training and keeps its model. A missing metric
value (NaN stored as NULL) is pruned wherever the pruner compares it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
from optuna.pruners import (
    BasePruner,
    HyperbandPruner,
    PercentilePruner,
    SuccessiveHalvingPruner,
)
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.orm import Session

from service.db.models import Job, Sweep
from service.db.scope import transactional
from service.sweeps import space as sp
from service.sweeps.store import trial_results
from service.sweeps.study import (
    TrialRecord,
    frozen,
    new_study,
    numbered,
    records,
    study_name,
)
from service.sweeps.validate import METRICS, PRUNER_DEFAULTS

DEFAULT_METRIC = "val_acc"
MEDIAN_PERCENTILE = 50.0
RUNG_NOTE = "completed_rung_"  # SuccessiveHalvingPruner's note on a trial: its value at rung i
REPLAYED = ("asha", "hyperband")  # pruners that keep notes on trials, rebuilt by replay


def pruner_config(request: Mapping[str, Any]) -> dict[str, Any]:
    """The stored request's ``pruner`` and ``pruner_options`` as ``{"type": ..., **options}``,
    defaults filled (older rows may lack options)."""
    kind = str(request.get("pruner") or "none")
    return {"type": kind, **PRUNER_DEFAULTS.get(kind, {}),
            **(request.get("pruner_options") or {})}


def max_epochs(request: Mapping[str, Any]) -> int:
    """The most epochs any trial of the request trains (Hyperband's maximum resource)."""
    base = int(((request.get("base") or {}).get("train") or {}).get("epochs") or 1)
    searched = (request.get("space") or {}).get("train.epochs")
    if not searched:
        return base
    return max(int(v) for v in sp.edge_values(searched) if isinstance(v, int | float))


def make_pruner(config: Mapping[str, Any], epochs: int) -> BasePruner | None:
    """The Optuna pruner of a config; None for ``none``."""
    kind = config["type"]
    if kind in ("median", "percentile"):
        percentile = MEDIAN_PERCENTILE if kind == "median" else float(config["percentile"])
        return PercentilePruner(percentile, n_startup_trials=0,
                                n_warmup_steps=int(config["warmup_epochs"]) + 1,
                                n_min_trials=int(config["min_trials"]))
    if kind == "asha":
        return SuccessiveHalvingPruner(min_resource=int(config["min_epochs"]),
                                       reduction_factor=int(config["reduction_factor"]))
    if kind == "hyperband":
        return HyperbandPruner(min_resource=int(config["min_epochs"]), max_resource=epochs,
                               reduction_factor=int(config["reduction_factor"]))
    return None


def _replay(storage, study, pruner: BasePruner, trial_id: int, curve: Mapping[int, float],
            ask: bool) -> None:
    """Report ``curve`` epoch by epoch, asking the pruner after each (for its notes only)."""
    for epoch in sorted(curve):
        storage.set_trial_intermediate_value(trial_id, epoch, curve[epoch])
        if ask:
            pruner.prune(study, storage.get_trial(trial_id))


def decide(config: Mapping[str, Any], found: list[TrialRecord], asking: int, *,
           metric: str = DEFAULT_METRIC, final_epoch: int | None = None,
           epochs: int | None = None, name: str = study_name(None)) -> str | None:
    """Whether trial ``asking`` stops at its latest epoch: the reason, or None to go on.

    ``found`` holds every trial with a job (service.sweeps.study.records); no DB here.
    """
    own = next((r for r in found if r.index == asking), None)
    if own is None or not own.curve:
        return None
    epoch = max(own.curve)
    pruner = make_pruner(config, epochs or final_epoch or epoch)
    if pruner is None or (final_epoch is not None and epoch >= final_epoch):
        return None
    study, storage = new_study(name, pruner=pruner)
    study_id = storage.get_study_id_from_name(name)
    replay = config["type"] in REPLAYED
    ids = {}
    for record in numbered(found):
        shell = dataclasses.replace(record, state=TrialState.RUNNING, value=None)
        ids[record.index] = storage.create_new_trial(study_id, frozen(shell, None,
                                                                      intermediate=False))
    for record in numbered(found):
        if record.index == asking:
            continue
        _replay(storage, study, pruner, ids[record.index], record.curve, replay)
        if record.state != TrialState.RUNNING:
            storage.set_trial_state_values(
                ids[record.index], record.state,
                [record.value] if record.state == TrialState.COMPLETE else None)
    _replay(storage, study, pruner, ids[asking],
            {e: v for e, v in own.curve.items() if e < epoch}, replay)
    storage.set_trial_intermediate_value(ids[asking], epoch, own.curve[epoch])
    if not pruner.prune(study, storage.get_trial(ids[asking])):
        return None
    return explain(config, study, pruner, storage.get_trial(ids[asking]), epoch, metric)


def _shown(value: float) -> str:
    return "none" if math.isnan(value) else f"{value:.4f}"


def _percentile_reason(config, study, trial: FrozenTrial, epoch: int, metric: str) -> str:
    median = config["type"] == "median"
    keep = MEDIAN_PERCENTILE if median else float(config["percentile"])
    peers = [t.intermediate_values[epoch]
             for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
             if epoch in t.intermediate_values]
    threshold = float(np.nanpercentile(np.array(peers, dtype=float), 100 - keep))
    values = np.array(list(trial.intermediate_values.values()), dtype=float)
    best = math.nan if np.isnan(values).all() else float(np.nanmax(values))
    rule = "the median rule" if median else f"the percentile rule (the top {keep:g} % go on)"
    level = "median" if median else f"{100 - keep:g}th percentile"
    return (f"pruned at epoch {epoch} by {rule}: {metric} {_shown(best)} (its best so far) is "
            f"below the {level} {threshold:.4f} of {len(peers)} succeeded trial(s) at that "
            f"epoch")


def _rung_peers(study, pruner: BasePruner, trial: FrozenTrial) -> list[FrozenTrial]:
    """The trials that compete with ``trial`` at its rungs: all, or its Hyperband bracket."""
    trials = study.get_trials(deepcopy=False)
    if not isinstance(pruner, HyperbandPruner):
        return trials
    bracket = pruner._get_bracket_id(study, trial)  # Optuna's assignment, to name the peers
    return [t for t in trials if pruner._get_bracket_id(study, t) == bracket]


def _halving_reason(config, study, pruner, trial: FrozenTrial, epoch: int, metric: str) -> str:
    eta = int(config["reduction_factor"])
    name = "ASHA"
    if isinstance(pruner, HyperbandPruner):
        name = f"Hyperband (bracket {pruner._get_bracket_id(study, trial)})"
    value = trial.intermediate_values[epoch]
    if math.isnan(value):
        return f"pruned at epoch {epoch} by {name}: no {metric} value at this rung"
    rung = sum(1 for key in trial.system_attrs if key.startswith(RUNG_NOTE)) - 1
    note = f"{RUNG_NOTE}{rung}"
    reached = [t.system_attrs[note] for t in _rung_peers(study, pruner, trial)
               if note in t.system_attrs]
    keep = max(1, len(reached) // eta)
    cut = sorted(reached, reverse=True)[keep - 1]
    return (f"pruned at rung epoch {epoch} by {name}, reduction factor {eta}: {metric} "
            f"{value:.4f} is not in the top {keep} of the {len(reached)} trial(s) that reached "
            f"this rung (cut-off {cut:.4f})")


def explain(config: Mapping[str, Any], study: optuna.Study, pruner: BasePruner,
            trial: FrozenTrial, epoch: int, metric: str) -> str:
    """The pruned trial's error: the rule, the epoch or rung, its value and the threshold."""
    if config["type"] in ("median", "percentile"):
        return _percentile_reason(config, study, trial, epoch, metric)
    return _halving_reason(config, study, pruner, trial, epoch, metric)


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
    if config["type"] not in PRUNER_DEFAULTS or config["type"] == "none":
        return None
    metric = sweep.metric if sweep.metric in METRICS else DEFAULT_METRIC
    results = trial_results(session, sweep)
    own = next((r for r in results if r.job_id == job.id), None)
    if own is None:
        return None
    return decide(config, records(results, metric), own.index, metric=metric,
                  final_epoch=_final_epoch(job.spec), epochs=max_epochs(sweep.request),
                  name=study_name(sweep.id))
