"""Trial generation: seeded random draws are reproducible and in range; grids are complete
and ordered."""

from __future__ import annotations

import math

from service.sweeps.space import generate, grid_params, random_params, set_path

SPACE = {"train.optimizer.lr": {"loguniform": [1e-6, 1e-2]},
         "train.weight_decay": {"uniform": [0.0, 0.1]},
         "model.hidden": {"choice": [[100], [50, 100]]},
         "train.batch_size": {"grid": [50, 100, 200]}}


def test_same_seed_gives_the_same_params_and_another_seed_does_not():
    first = random_params(SPACE, seed=7, n=12)
    assert first == random_params(SPACE, seed=7, n=12)
    assert first != random_params(SPACE, seed=8, n=12)
    assert random_params(SPACE, seed=7, n=5) == first[:5]


def test_loguniform_draws_stay_in_bounds_and_spread_over_decades():
    draws = [p["train.optimizer.lr"] for p in random_params(SPACE, seed=0, n=400)]
    assert all(1e-6 <= v <= 1e-2 for v in draws)
    decades = {math.floor(math.log10(v)) for v in draws}
    assert decades == {-6, -5, -4, -3}  # uniform in log space, not bunched near 1e-2


def test_random_values_are_plain_json_types():
    params = random_params(SPACE, seed=1, n=20)
    for p in params:
        assert type(p["train.optimizer.lr"]) is float and type(p["train.weight_decay"]) is float
        assert 0.0 <= p["train.weight_decay"] <= 0.1
        assert p["model.hidden"] in ([100], [50, 100])
        assert type(p["train.batch_size"]) is int


def test_grid_is_the_cartesian_product_first_path_slowest():
    space = {"a": {"grid": [1, 2]}, "b": {"choice": ["x", "y", "z"]}}
    assert grid_params(space) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
        {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]
    assert generate(space, "grid", seed=3, max_trials=99) == grid_params(space)


def test_set_path_makes_objects_and_refuses_to_walk_into_lists():
    doc = {"train": {"epochs": 1}, "model": {"hidden": [1]}}
    assert set_path(doc, "train.optimizer.lr", 0.1)
    assert doc["train"] == {"epochs": 1, "optimizer": {"lr": 0.1}}
    assert not set_path(doc, "model.hidden.0", 5)
