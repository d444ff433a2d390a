"""Sweep requests: every problem is refused before anything is stored, naming the field."""

from __future__ import annotations

import pytest

from service.sweeps.validate import (
    MAX_SPACE_PATHS,
    MAX_TRIALS,
    SweepInvalid,
    plan_sweep,
)

BASE = {"data": {"dataset": "synthetic", "samples": 200},
        "model": {"preset": "mlp", "hidden": [16]}, "train": {"epochs": 2}}
LR = {"train.optimizer.lr": {"loguniform": [1e-4, 1e-1]}}


def request(**overrides):
    return {"name": "s", "base": BASE, "space": LR, "max_trials": 4, **overrides}


def problems(**overrides) -> dict[str, str]:
    with pytest.raises(SweepInvalid) as caught:
        plan_sweep(request(**overrides))
    return dict(caught.value.problems)


def test_a_valid_request_is_normalised_with_every_trial_spec():
    plan = plan_sweep(request(pruner="asha"))
    assert plan.request["strategy"] == "random" and plan.request["metric"] == "val_acc"
    assert plan.request["pruner_options"] == {"min_epochs": 1, "reduction_factor": 3}
    assert plan.request["base"]["train"]["batch_size"] == 100  # defaults filled in
    assert len(plan.params) == len(plan.specs) == 4
    for i, (params, spec) in enumerate(zip(plan.params, plan.specs, strict=True)):
        assert spec["name"] == f"s-t{i}"
        assert spec["train"]["optimizer"]["lr"] == params["train.optimizer.lr"]
        assert spec["model"]["hidden"] == [16] and spec["train"]["epochs"] == 2


def test_unknown_path_is_named():
    assert problems(space={"train.learning_rate": {"uniform": [0.1, 0.2]}}) == {
        "space.train.learning_rate": "unknown spec field"}
    # a field of another model kind is unknown for this base
    assert "space.model.filters" in problems(space={"model.filters": {"choice": [8, 16]}})


def test_empty_ranges_and_choices_are_named():
    assert "empty range" in problems(space={"train.weight_decay": {"uniform": [0.1, 0.1]}})[
        "space.train.weight_decay.uniform"]
    assert "space.train.weight_decay.uniform" in problems(
        space={"train.weight_decay": {"uniform": [0.2, 0.1]}})
    assert "space.model.hidden.choice" in problems(space={"model.hidden": {"choice": []}})


def test_non_positive_log_bound_is_named():
    for lo in (-1e-3, 0):
        found = problems(space={"train.optimizer.lr": {"loguniform": [lo, 1e-2]}})
        assert "positive" in found["space.train.optimizer.lr.loguniform"]


def test_more_trials_than_the_cap_is_named():
    assert "max_trials" in problems(max_trials=MAX_TRIALS + 1)
    many = {f"train.p{i}": {"choice": [1]} for i in range(MAX_SPACE_PATHS + 1)}
    assert "space" in problems(space=many)


def test_test_accuracy_is_refused_with_the_reason():
    assert "leaks the test set" in problems(metric="test_acc")["metric"]
    assert "metric" in problems(metric="loss")


def test_grid_refuses_continuous_ranges_and_oversized_grids():
    assert "space.train.optimizer.lr.loguniform" in problems(strategy="grid")
    big = {"train.batch_size": {"grid": [10, 20, 30]}, "train.seed": {"grid": [1, 2]}}
    assert "6 combinations" in problems(strategy="grid", space=big, max_trials=5)["max_trials"]
    plan = plan_sweep({"name": "g", "base": BASE, "space": big, "strategy": "grid"})
    assert len(plan.specs) == 6 and plan.request["max_trials"] == 6


def test_a_bad_generated_trial_names_the_trial_and_field():
    found = problems(space={"train.batch_size": {"choice": [50, 0]}}, seed=0)
    message = found["space.train.batch_size"]
    assert message.startswith("trial ") and "invalid spec: train.batch_size" in message


def test_bad_base_and_pruner_options_are_named():
    bad_base = {**BASE, "model": {"preset": "mlp", "hidden": [0]}}
    assert "base.model.hidden[0]" in problems(base=bad_base)
    assert "pruner_options.reduction_factor" in problems(pruner="median",
                                                          pruner_options={"reduction_factor": 2})
    assert "space.train.optimizer.lr" in problems(space={"train.optimizer.lr": {"normal": [0, 1]}})


@pytest.mark.parametrize("strategy", ["random", "qmc", "tpe", "cmaes", "gp"])
def test_every_strategy_plans_a_numeric_space(strategy):
    space = {**LR, "model.hidden.0": {"int_log": [8, 64]},
             "model.dropout": {"uniform": [0.0, 0.5], "step": 0.1}}
    plan = plan_sweep(request(strategy=strategy, space=space))
    assert plan.request["strategy"] == strategy and len(plan.specs) == 4
    if strategy in ("tpe", "cmaes", "gp"):  # chosen when each trial starts
        assert plan.params == [{}] * 4 and plan.specs == [{}] * 4
        assert plan.request["sampler_options"] == {"startup_trials": None}
    else:
        assert all(spec["model"]["hidden"] == [p["model.hidden.0"]]
                   for p, spec in zip(plan.params, plan.specs, strict=True))
        assert "sampler_options" not in plan.request  # as stored before it existed


def test_a_strategy_over_a_space_it_cannot_search_is_named():
    hidden = {"model.hidden": {"choice": [[16], [32]]}}
    assert "numeric ranges only" in problems(strategy="cmaes", space={**LR, **hidden})[
        "space.model.hidden.choice"]
    assert "strategy" in problems(strategy="hyperopt")
    assert plan_sweep(request(strategy="tpe", space={**LR, **hidden})).request["space"] == {
        **LR, **hidden}


def test_options_out_of_range_or_for_another_strategy_are_named():
    assert "sampler_options.startup_trials" in problems(sampler_options={"startup_trials": 3})
    assert "sampler_options.startup_trials" in problems(strategy="tpe",
                                                        sampler_options={"startup_trials": -1})
    assert "pruner_options.percentile" in problems(pruner="percentile",
                                                   pruner_options={"percentile": 100})
    assert "applies to the pruners asha, hyperband" in problems(
        pruner="median", pruner_options={"min_epochs": 2})["pruner_options.min_epochs"]
    assert "past the trials' last epoch" in problems(
        pruner="hyperband", pruner_options={"min_epochs": 3})["pruner_options.min_epochs"]


def test_an_adaptive_strategy_checks_each_end_of_each_range_up_front():
    found = problems(strategy="tpe", space={"train.batch_size": {"int": [0, 64]}})
    assert found["space.train.batch_size"].startswith("train.batch_size = 0 gives an invalid")
    found = problems(strategy="gp", space={"model.hidden.0": {"int": [0, 64]}})
    assert "model.hidden[0]" in found["space.model.hidden.0"]
    assert "space.model.hidden.5" in problems(strategy="tpe",
                                              space={"model.hidden.5": {"int": [1, 64]}})
