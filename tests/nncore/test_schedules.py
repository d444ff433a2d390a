"""Learning-rate schedules: each step's rate against a hand computation, the rate a run
really steps with, and the spec's checks."""

import itertools
import math

import pytest

from nncore import SpecError, TrainingRun, parse_spec
from nncore.schedules import SCHEDULES, Plan

PLAN = Plan(steps_per_epoch=4, total_steps=20)     # 5 epochs of 4 steps
LR = 0.1


def rates(schedule: dict, plan: Plan = PLAN, lr: float = LR) -> list[float]:
    spec = SCHEDULES[schedule["type"]](**schedule)
    return [spec.lr(k, lr, plan) for k in range(plan.total_steps)]


def test_constant_is_the_optimizers_rate_at_every_step():
    assert rates({"type": "constant"}) == [LR] * 20


def test_warmup_climbs_linearly_to_the_rate_over_its_epochs():
    # W = 2 epochs * 4 steps = 8: step k uses lr * (k + 1) / 8, then lr.
    expected = [0.0125, 0.025, 0.0375, 0.05, 0.0625, 0.075, 0.0875, 0.1] + [0.1] * 12
    assert rates({"type": "constant", "warmup_epochs": 2}) == pytest.approx(expected, abs=1e-15)


def test_step_decay_multiplies_by_gamma_every_few_epochs():
    # every 2 epochs = 8 steps: 0.1 for steps 0-7, 0.05 for 8-15, 0.025 for 16-19.
    expected = [0.1] * 8 + [0.05] * 8 + [0.025] * 4
    assert rates({"type": "step", "every_epochs": 2, "gamma": 0.5}) == pytest.approx(expected)


def test_step_decay_after_warmup_counts_epochs_from_the_start():
    got = rates({"type": "step", "every_epochs": 2, "gamma": 0.5, "warmup_epochs": 1})
    assert got[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert got[4:] == pytest.approx([0.1] * 4 + [0.05] * 8 + [0.025] * 4)


def test_cosine_anneals_from_the_rate_to_min_lr():
    got = rates({"type": "cosine", "min_lr": 0.01})
    # by hand: 0.01 + 0.09 * (1 + cos(pi * k / 20)) / 2
    assert got[0] == pytest.approx(0.1)
    assert got[5] == pytest.approx(0.01 + 0.09 * (1 + math.sqrt(0.5)) / 2)   # cos(pi/4)
    assert got[10] == pytest.approx(0.055)                                    # cos(pi/2) = 0
    assert got[15] == pytest.approx(0.01 + 0.09 * (1 - math.sqrt(0.5)) / 2)  # cos(3pi/4)
    assert all(a > b for a, b in itertools.pairwise(got))
    assert got[-1] > 0.01


def test_cosine_after_warmup_anneals_over_the_remaining_steps():
    got = rates({"type": "cosine", "warmup_epochs": 1})
    assert got[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    # 16 steps after warmup: step 4 + j uses 0.1 * (1 + cos(pi * j / 16)) / 2
    assert got[4] == pytest.approx(0.1)
    assert got[12] == pytest.approx(0.05)                                     # j = 8
    assert got[19] == pytest.approx(0.05 * (1 + math.cos(math.pi * 15 / 16)))


def spec_with(schedule: dict, optimizer: dict | None = None, epochs: int = 3) -> dict:
    return {"data": {"dataset": "synthetic", "samples": 200, "val_fraction": 0.1},
            "model": {"preset": "mlp", "hidden": [8]},
            "train": {"epochs": epochs, "batch_size": 36, "schedule": schedule,
                      "optimizer": optimizer or {"type": "sgd", "lr": 0.05}}}


@pytest.mark.parametrize("optimizer", [{"type": "sgd", "lr": 0.05},
                                       {"type": "momentum", "lr": 0.05},
                                       {"type": "adam", "lr": 0.05}])
def test_a_run_steps_with_the_scheduled_rate_whatever_the_optimizer(optimizer):
    schedule = {"type": "cosine", "warmup_epochs": 1, "min_lr": 0.001}
    run = TrainingRun.from_spec(spec_with(schedule, optimizer))
    used = []
    run.fit(on_iteration=lambda _p: used.append(run.optimizer.hyper["lr"]))
    plan = Plan(run.steps_per_epoch, run.total_iterations)             # 4 steps per epoch
    assert used == [SCHEDULES["cosine"](**schedule).lr(k, 0.05, plan) for k in range(12)]
    assert used[0] == pytest.approx(0.0125) and used[3] == pytest.approx(0.05)


def test_a_constant_schedule_leaves_the_rate_untouched():
    run = TrainingRun.from_spec(spec_with({"type": "constant"}))
    used = set()
    run.fit(on_iteration=lambda _p: used.add(run.optimizer.hyper["lr"]))
    assert used == {0.05}


@pytest.mark.parametrize("schedule,message", [
    ({"type": "cosine", "min_lr": 0.05}, "min_lr (0.05) must be below optimizer.lr (0.05)"),
    ({"type": "step", "warmup_epochs": 3}, "warmup_epochs (3) must be below epochs (3)"),
    ({"type": "linear"}, "type must be one of constant, step, cosine"),
])
def test_bad_schedules_are_refused_naming_the_field(schedule, message):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(schedule))
    assert err.value.path == "train.schedule" and message in err.value.message


@pytest.mark.parametrize("field,value", [("gamma", 0.0), ("gamma", 1.0), ("every_epochs", 0),
                                         ("warmup_epochs", -1)])
def test_step_fields_are_bounded(field, value):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with({"type": "step", field: value}))
    assert err.value.path == f"train.schedule.{field}"


def test_the_default_schedule_is_constant_without_warmup():
    spec = spec_with({})
    del spec["train"]["schedule"]
    train = parse_spec(spec).document()["train"]
    assert train["schedule"] == {"type": "constant", "warmup_epochs": 0}
