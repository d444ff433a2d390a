"""Choosing an adaptive strategy's next trial: ask Optuna, given every trial so far.

The scheduler calls ``choose`` when a slot opens, in the locked transaction that gives the
trial its job. The study is rebuilt from the sweep's rows (service.sweeps.study), so with
``parallelism: 1`` the same seed gives the same sequence of trials: each is asked from the
same finished trials with the same sampler seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from nncore import SpecError
from service.sweeps.ranking import TrialResult
from service.sweeps.samplers import adaptive_sampler
from service.sweeps.study import ask, join_params, records, study_name, study_of
from service.sweeps.validate import trial_name, trial_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    """A chosen trial: its params row (with the sampler's notes), its spec, and ``error`` when
    the sampler failed or the chosen values give no valid spec (the trial then fails at once,
    never queued, and the next trial is asked for)."""

    params: dict[str, Any]
    notes: dict[str, Any]
    spec: dict[str, Any]
    error: str | None = None


def choose(request: dict[str, Any], sweep_id: int, name: str, results: list[TrialResult],
           index: int, metric: str) -> Choice:
    """Trial ``index``'s parameters and spec, from the trials in ``results``."""
    space = request["space"]
    startup = (request.get("sampler_options") or {}).get("startup_trials")
    sampler = adaptive_sampler(request["strategy"], int(request.get("seed") or 0), index,
                               startup)
    try:
        study = study_of(study_name(sweep_id), space, records(results, metric),
                         sampler=sampler, upto=index)
        params, notes = ask(study, space)
    except Exception as exc:  # third-party code: fail this trial, not the sweep
        log.exception("sweep %s: the %s sampler failed on trial %s", sweep_id,
                      request["strategy"], index)
        return Choice({}, {}, {**request["base"], "name": trial_name(name, index)},
                      f"the {request['strategy']} sampler failed: {exc}")
    stored = join_params(params, notes)
    try:
        spec = trial_spec(request["base"], params, trial_name(name, index))
    except SpecError as exc:
        reason = "; ".join(f"{path}: {msg}" for path, msg in exc.problems)
        return Choice(stored, notes, {**request["base"], "name": trial_name(name, index)},
                      f"the chosen parameters give an invalid spec: {reason}")
    return Choice(stored, notes, spec)
