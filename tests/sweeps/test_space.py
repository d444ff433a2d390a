"""Spaces and the trials drawn up front: seeded draws are reproducible and in range, ints are
ints, steps are kept, grids are complete; paths reach into lists."""

from __future__ import annotations

import json
import math

import pytest

from service.sweeps.space import (
    SpaceError,
    check_space,
    grid_size,
    grid_values,
    set_path,
)
from service.sweeps.study import draw_upfront

SPACE = {"train.optimizer.lr": {"loguniform": [1e-6, 1e-2]},
         "train.weight_decay": {"uniform": [0.0, 0.1]},
         "model.hidden": {"choice": [[100], [50, 100]]},
         "train.batch_size": {"grid": [50, 100, 200]},
         "model.hidden.0": {"int_log": [8, 512]},
         "train.epochs": {"int": [2, 10], "step": 2},
         "model.dropout": {"uniform": [0.0, 0.5], "step": 0.1}}


@pytest.mark.parametrize("strategy", ["random", "qmc"])
def test_same_seed_gives_the_same_params_and_another_seed_does_not(strategy):
    first = draw_upfront(SPACE, strategy, 7, 12)
    assert first == draw_upfront(SPACE, strategy, 7, 12)
    assert first != draw_upfront(SPACE, strategy, 8, 12)
    assert draw_upfront(SPACE, strategy, 7, 5) == first[:5]


def test_loguniform_draws_stay_in_bounds_and_spread_over_decades():
    draws = [p["train.optimizer.lr"] for p in draw_upfront(SPACE, "random", 0, 400)]
    assert all(1e-6 <= v <= 1e-2 for v in draws)
    decades = {math.floor(math.log10(v)) for v in draws}
    assert decades == {-6, -5, -4, -3}  # uniform in log space, not bunched near 1e-2


@pytest.mark.parametrize("strategy", ["random", "qmc"])
def test_values_are_plain_json_types_on_their_steps(strategy):
    for p in draw_upfront(SPACE, strategy, 1, 40):
        assert type(p["train.optimizer.lr"]) is float and type(p["train.weight_decay"]) is float
        assert 0.0 <= p["train.weight_decay"] <= 0.1
        assert p["model.hidden"] in ([100], [50, 100])
        assert type(p["train.batch_size"]) is int and p["train.batch_size"] in (50, 100, 200)
        assert type(p["model.hidden.0"]) is int and 8 <= p["model.hidden.0"] <= 512
        assert p["train.epochs"] in (2, 4, 6, 8, 10)
        assert p["model.dropout"] in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
        json.dumps(p)


def test_grid_draws_every_combination_once_in_an_order_from_the_seed():
    space = {"a": {"grid": [1, 2]}, "b": {"choice": ["x", "y", "z"]},
             "c": {"int": [0, 4], "step": 2}}
    combos = draw_upfront(space, "grid", 3, grid_size(space))
    assert grid_size(space) == 18 and len(combos) == 18
    assert sorted(json.dumps(c, sort_keys=True) for c in combos) == sorted(
        json.dumps({"a": a, "b": b, "c": c}, sort_keys=True)
        for a in (1, 2) for b in "xyz" for c in (0, 2, 4))
    assert combos == draw_upfront(space, "grid", 3, 18)


def test_grid_values_enumerate_steps_and_drop_repeats():
    assert grid_values({"uniform": [0.0, 0.3], "step": 0.1}) == [0.0, 0.1, 0.2, 0.3]
    assert grid_values({"int": [1, 3]}) == [1, 2, 3]
    assert grid_values({"choice": [[1], [1], 2]}) == [[1], 2]
    assert grid_values({"loguniform": [1e-3, 1e-1]}) is None


def test_bad_entries_are_named_under_their_path():
    with pytest.raises(SpaceError) as caught:
        check_space({"a": {"int": [1.5, 3]}, "b": {"int_log": [0, 8]},
                     "c": {"uniform": [0, 1], "step": 0.3}, "d": {"choice": [1], "step": 1},
                     "e": {"int": [1, 2], "loguniform": [1, 2]}})
    problems = dict(caught.value.problems)
    assert "whole numbers" in problems["a.int"] and "starts at 1" in problems["b.int_log"]
    assert "multiple of the step" in problems["c.step"]
    assert "applies to uniform and int" in problems["d.step"] and "expected one of" in problems["e"]


def test_set_path_makes_objects_and_indexes_existing_list_items():
    doc = {"train": {"epochs": 1}, "model": {"hidden": [1, 2]}}
    assert set_path(doc, "train.optimizer.lr", 0.1)
    assert doc["train"] == {"epochs": 1, "optimizer": {"lr": 0.1}}
    assert set_path(doc, "model.hidden.1", 5) and doc["model"]["hidden"] == [1, 5]
    assert not set_path(doc, "model.hidden.2", 5)  # past the end
    assert not set_path(doc, "train.epochs.x", 5)  # through a number
