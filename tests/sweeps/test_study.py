"""nnq's trials as an Optuna study: values cross both ways, numbers stay indices, and an
adaptive sampler asked from the same history with the same seed chooses the same trial."""

from __future__ import annotations

from optuna.trial import TrialState

from nnq.status import JobStatus
from service.sweeps.ranking import TrialResult
from service.sweeps.samplers import adaptive_sampler
from service.sweeps.study import (
    SAMPLER_KEY,
    TrialRecord,
    ask,
    from_optuna,
    join_params,
    records,
    split_params,
    study_of,
    to_optuna,
)

SPACE = {"x": {"uniform": [-5.0, 5.0]}, "y": {"uniform": [-5.0, 5.0]}}
NAME = "nnq-sweep-test"


def objective(params: dict) -> float:
    """Maximised at (1, -2)."""
    return -((params["x"] - 1) ** 2 + (params["y"] + 2) ** 2)


def run(strategy: str, trials: int, seed: int = 3, startup: int | None = None
        ) -> list[TrialRecord]:
    """Choose and 'train' trials one at a time (parallelism 1), rebuilding the study for
    every choice as the scheduler does."""
    done: list[TrialRecord] = []
    for index in range(trials):
        study = study_of(NAME, SPACE, done, sampler=adaptive_sampler(strategy, seed, index, startup),
                         upto=index)
        params, notes = ask(study, SPACE)
        value = objective(params)
        done.append(TrialRecord(index=index, state=TrialState.COMPLETE, value=value,
                                params=params, notes=notes, curve={1: value}))
    return done


def test_listed_values_cross_as_json_text_and_numbers_are_clamped():
    choice = {"choice": [[100], [50, 100], "relu", None]}
    assert to_optuna(choice, [50, 100]) == "[50, 100]"
    assert from_optuna(choice, "[50, 100]") == [50, 100] and from_optuna(choice, "null") is None
    assert to_optuna(choice, [7]) is None  # not a listed value
    assert to_optuna({"loguniform": [1e-4, 1e-1]}, 0.10000000000000002) == 0.1
    assert to_optuna({"int": [1, 9]}, 4) == 4 and to_optuna({"int": [1, 9]}, "4") is None
    assert from_optuna({"uniform": [0, 1], "step": 0.1}, 0.30000000000000004) == 0.3


def test_sampler_notes_ride_along_with_the_params():
    stored = join_params({"x": 1.0}, {"cma:generation": 2})
    assert stored == {"x": 1.0, SAMPLER_KEY: {"cma:generation": 2}}
    assert split_params(stored) == ({"x": 1.0}, {"cma:generation": 2})
    assert join_params({"x": 1.0}, {}) == {"x": 1.0}


def test_records_number_trials_by_index_and_map_job_states():
    results = [
        TrialResult(index=0, params={"x": 0.0, "y": 0.0}, status=JobStatus.SUCCEEDED, job_id=1,
                    curve=[{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": 0.6}]),
        TrialResult(index=1, params={"x": 9.0, "y": 0.0}, status=JobStatus.SUCCEEDED, job_id=2,
                    curve=[{"epoch": 1, "val_acc": 0.4}]),
        TrialResult(index=3, params={"x": 1.0, "y": 1.0}, status=JobStatus.PRUNED, job_id=3,
                    curve=[{"epoch": 1, "val_acc": None}]),
        TrialResult(index=4, params={}, status="pending", chosen=False),
    ]
    found = records(results, "val_acc")
    assert [(r.index, r.state) for r in found] == [
        (0, TrialState.COMPLETE), (1, TrialState.COMPLETE), (3, TrialState.PRUNED)]
    assert found[0].value == 0.6 and found[0].curve == {1: 0.5, 2: 0.6}
    trials = study_of(NAME, SPACE, found).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert trials[1].state == TrialState.COMPLETE and trials[1].params == {"x": 5.0, "y": 0.0}
    assert trials[2].state == TrialState.FAIL  # index 2 never got a job


def test_a_value_the_space_cannot_hold_makes_a_failed_trial_without_params():
    found = [TrialRecord(index=0, state=TrialState.COMPLETE, value=0.5, params={"x": "big"})]
    trial = study_of(NAME, SPACE, found).get_trials()[0]
    assert trial.state == TrialState.FAIL and trial.params == {}


def test_tpe_and_gp_choose_the_same_sequence_for_the_same_seed():
    first = [r.params for r in run("tpe", 6, startup=3)]
    assert first == [r.params for r in run("tpe", 6, startup=3)]
    assert first != [r.params for r in run("tpe", 6, seed=4, startup=3)]
    assert len({(p["x"], p["y"]) for p in first}) == 6  # the random start differs per trial
    gp = [r.params for r in run("gp", 4, startup=2)]
    assert gp == [r.params for r in run("gp", 4, startup=2)]
    assert gp[:2] == first[:2]  # the same seeds give the same random start


def test_cmaes_replays_its_generations_from_the_stored_tags():
    trials = run("cmaes", 40)
    assert [r.params for r in trials] == [r.params for r in run("cmaes", 40)]
    generations = [r.notes.get("cma:generation") for r in trials[1:]]
    assert generations == sorted(generations) and generations[-1] >= 4  # it keeps learning
    assert all(SAMPLER_KEY not in r.params and not any("optimizer" in k for k in r.notes)
               for r in trials)
    late = max(r.value for r in trials[-10:])
    assert late > max(r.value for r in trials[:6]) and late > -0.5  # near the optimum
