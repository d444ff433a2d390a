"""Which Optuna sampler each strategy is, and how it is seeded.

``random``, ``grid`` and ``qmc`` draw every trial when the sweep is accepted, from one study
and the sweep's seed, so the same request gives the same trials whatever the workers do.
``tpe``, ``cmaes`` and ``gp`` choose each trial when it starts, from the trials so far; no
sampler outlives a call, so each is made afresh for the trial it chooses:

- TPE and GP get a seed derived from (sweep seed, trial index): their random start and their
  candidate draws differ from trial to trial but are the same whenever that trial is chosen
  from the same history.
- CMA-ES keeps a state (mean, step size, covariance) that Optuna pickles into trial
  attributes. nnq stores no pickle: ``ReplayedCmaEsSampler`` rebuilds that state from the
  sweep's seed and each finished trial's generation, a plain number kept with the trial.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import optuna
from optuna._transform import _SearchSpaceTransform
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GridSampler,
    QMCSampler,
    RandomSampler,
    TPESampler,
)

UPFRONT = ("random", "grid", "qmc")  # every trial drawn when the sweep is accepted
ADAPTIVE = ("tpe", "cmaes", "gp")  # each trial chosen from the finished ones when it starts
STRATEGIES = UPFRONT + ADAPTIVE
NUMERIC_ONLY = ("cmaes",)  # strategies that search ranges only, no choice or grid values
# Random trials an adaptive sampler starts with when the request does not say (Optuna's).
DEFAULT_STARTUP_TRIALS = {"tpe": 10, "gp": 10, "cmaes": 1}
SEED_WORDS = 1

warnings.filterwarnings("ignore", category=ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def unavailable(strategy: str) -> str | None:
    """Why the installed libraries cannot run ``strategy``, or None."""
    if strategy == "gp" and (not hasattr(optuna.samplers, "GPSampler")
                             or importlib.util.find_spec("torch") is None
                             or importlib.util.find_spec("scipy") is None):
        return ("the gp strategy needs Optuna's GPSampler with PyTorch and SciPy installed; "
                "use tpe or cmaes")
    return None


def trial_seed(seed: int, index: int) -> int:
    """A seed of its own for the trial ``index`` of a sweep seeded ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(SEED_WORDS)[0])


def upfront_sampler(strategy: str, seed: int,
                    grid: dict[str, list] | None = None) -> BaseSampler:
    """The sampler that draws all of a ``random``, ``grid`` or ``qmc`` sweep's trials."""
    if strategy == "grid":
        return GridSampler(grid or {}, seed=seed)
    if strategy == "qmc":
        return QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
    return RandomSampler(seed=seed)


def adaptive_sampler(strategy: str, seed: int, index: int,
                     startup_trials: int | None) -> BaseSampler:
    """The sampler that chooses trial ``index`` of a ``tpe``, ``cmaes`` or ``gp`` sweep."""
    startup = DEFAULT_STARTUP_TRIALS[strategy] if startup_trials is None else startup_trials
    own = trial_seed(seed, index)
    if strategy == "cmaes":
        return ReplayedCmaEsSampler(seed=seed, n_startup_trials=startup,
                                    independent_sampler=RandomSampler(seed=own))
    if strategy == "gp":
        return optuna.samplers.GPSampler(seed=own, n_startup_trials=startup)
    return TPESampler(seed=own, n_startup_trials=startup, constant_liar=True)


class ReplayedCmaEsSampler(CmaEsSampler):
    """CMA-ES whose state is replayed from the trials instead of unpickled.

    Optuna's sampler tells the optimizer one generation per call and pickles the result into
    the asking trial. Here every call starts from the optimizer the seed gives and tells it
    each complete generation in order (the first ``population_size`` finished trials tagged
    with it, as Optuna would); the telling is deterministic, so the state is the same as
    stored, and what nnq keeps per trial is only its ``cma:generation`` tag.
    """

    def sample_relative(self, study, trial, search_space):
        self._replay_space = search_space
        self._replay_direction = study.direction
        return super().sample_relative(study, trial, search_space)

    def _restore_optimizer(self, completed_trials):
        transform = _SearchSpaceTransform(self._replay_space,
                                          transform_step=not self._with_margin,
                                          transform_0_1=True)
        optimizer = self._init_optimizer(transform, self._replay_direction)
        sign = -1.0 if self._replay_direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        while True:
            generation = self._get_solution_trials(completed_trials, optimizer.generation)
            if len(generation) < optimizer.population_size:
                return optimizer
            optimizer.tell([(transform.transform(t.params), sign * t.value)
                            for t in generation[:optimizer.population_size]])
