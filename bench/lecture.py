"""Replay the lecture's experiments (examples/lecture/) and check that each lesson still holds.

Each experiment is a sweep request nnq runs as it is (``nnq sweep
examples/lecture/weight-init.json``). This script runs every one of them directly through
nncore (``TrainingRun.from_spec``, one trial after another, each trial spec checked by the
API's schema) or, with ``--api``, as sweeps on a running stack through ``nnq.Client``; then it
prints what was measured and each lesson as a claim with its numbers, PASS or FAIL. Directly,
a random search draws its trials from the request's seed with NumPy, so its points may differ
from the service's.

``--quick`` shrinks every experiment (less data, fewer epochs and trials) and checks only the
claims that are stable at that size; the test suite runs it. Like a worker, it trains with one
BLAS thread unless OPENBLAS_NUM_THREADS says otherwise.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/lecture.py \\
        [--quick] [--only weight-init] [--api http://127.0.0.1:5000]

Exits 1 when a checked claim fails.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# isort: off
import workers  # noqa: F401 - first: trains like a worker, one BLAS thread, before numpy loads
# isort: on
import numpy as np
from scipy.stats import spearmanr

import nncore
from service.spec import validate_spec

ROOT = Path(__file__).resolve().parents[1]
LECTURE = ROOT / "examples" / "lecture"
SWEEP_TIMEOUT_S = 3 * 3600
SPARK = " ▁▂▃▄▅▆▇█"
# What the claims call a collapse, a spread, learning and memorising.
COLLAPSE_RATIO = 100.0       # He's layer-5 activation std over std 0.01's, at least
SPREAD_RATIO = 2.0           # Xavier's sigmoid layer-5 std over std 0.01's, at least
NEAR_CHANCE = 0.2            # train_acc of a network that has not learned (chance: 0.1)
LEARNED_MARGIN = 0.3         # above that, a network has learned
BN_MAJORITY = 0.75           # BatchNorm must win at this share of the init scales
MEMORISED = 0.99             # train_acc of a net that has fitted its training samples
LOSS_AT = 500                # the lecture compares optimizers' losses here (or at the end)
LOSS_WINDOW = 50             # mean loss over the iterations (LOSS_AT - LOSS_WINDOW, LOSS_AT]
GOOD_LR = 1e-3               # the lecture's good region of the learning rate starts here
TOP_SHARE = 1 / 6            # "the best trials": this share of them (5 of 30)


@dataclass
class Trial:
    """One trained spec of an experiment, whichever way it ran."""

    params: dict[str, Any]
    spec: dict
    metrics: list[dict]
    losses: list[tuple[int, float]]
    activations: dict[int, list[dict]]      # epoch -> per-layer statistics on the probe
    error: str | None = None

    def last(self, key: str) -> float | None:
        return self.metrics[-1][key] if self.metrics else None

    def loss_near(self, iteration: int) -> float:
        """Mean kept loss over the ``LOSS_WINDOW`` iterations up to ``iteration``."""
        kept = [loss for i, loss in self.losses if iteration - LOSS_WINDOW < i <= iteration]
        return float(np.mean(kept)) if kept else math.nan

    def activation_layers(self, epoch: int = 1) -> list[dict]:
        """The statistics of each activation layer's output (relu, sigmoid, tanh) on the
        probe batch after ``epoch``: the lecture's "layer 1" to "layer 5"."""
        return [layer for layer in self.activations.get(epoch, [])
                if layer["type"] in nncore.layers.ACTIVATIONS]


def pick(trials: list[Trial], **wanted: Any) -> Trial:
    """The trial whose params match ``wanted`` (keys: spec paths with "__" for ".")."""
    paths = {key.replace("__", "."): value for key, value in wanted.items()}
    for trial in trials:
        if all(trial.params.get(path) == value for path, value in paths.items()):
            return trial
    raise LookupError(f"no trial with {paths}")


@dataclass(frozen=True)
class Claim:
    text: str
    passed: bool
    stable: bool = True      # also checked by --quick


@dataclass
class Lesson:
    lines: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)


def sparkline(counts: list[int]) -> str:
    top = max(counts) or 1
    return "".join(SPARK[round(c / top * (len(SPARK) - 1))] for c in counts)


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


# --- the lessons ------------------------------------------------------------------------------

def weight_init(trials: list[Trial]) -> Lesson:
    lesson = Lesson()
    for trial in trials:
        act, init = trial.params["model.activation"], trial.params["model.init"]
        lesson.lines.append(f"{act:7s} {init:6s}: train_acc {fmt(trial.last('train_acc'))} "
                            f"after {len(trial.metrics)} epochs; after epoch 1, per layer:")
        for i, layer in enumerate(trial.activation_layers(), 1):
            lesson.lines.append(f"    layer {i}: mean {layer['mean']:9.3g} std "
                                f"{layer['std']:9.3g}  [{layer['edges'][0]:.2g}, "
                                f"{layer['edges'][-1]:.2g}] |{sparkline(layer['counts'])}|")
    he, tiny = pick(trials, model__activation="relu", model__init="he"), \
        pick(trials, model__activation="relu", model__init="std")
    he_std, tiny_std = (t.activation_layers()[-1]["std"] for t in (he, tiny))
    lesson.claims.append(Claim(
        f"ReLU, after epoch 1: He init keeps layer 5's activation std at {he_std:.3g} while "
        f"std 0.01 collapses to {tiny_std:.2g}", he_std > COLLAPSE_RATIO * tiny_std))
    xavier = pick(trials, model__activation="sigmoid", model__init="xavier")
    squeezed = pick(trials, model__activation="sigmoid", model__init="std")
    x_std, s_std = (t.activation_layers()[-1]["std"] for t in (xavier, squeezed))
    lesson.claims.append(Claim(
        f"sigmoid, after epoch 1: std 0.01 squeezes layer 5 around 0.5 (std {s_std:.3g}) "
        f"while Xavier spreads it (std {x_std:.3g})", x_std > SPREAD_RATIO * s_std))
    relu_xavier = pick(trials, model__activation="relu", model__init="xavier")
    he_acc, xavier_acc, tiny_acc = (t.last("train_acc") for t in (he, relu_xavier, tiny))
    epochs = len(he.metrics)
    lesson.claims.append(Claim(
        f"ReLU after {epochs} epochs of SGD: He reaches train_acc {he_acc:.3f} while std 0.01 "
        f"stays near chance ({tiny_acc:.3f})",
        tiny_acc < NEAR_CHANCE and he_acc > tiny_acc + LEARNED_MARGIN))
    lesson.claims.append(Claim(
        f"ReLU: Xavier learns too ({xavier_acc:.3f} after {epochs} epochs), but not faster "
        f"than He ({he_acc:.3f})",
        xavier_acc > tiny_acc + LEARNED_MARGIN and he_acc >= xavier_acc, stable=False))
    return lesson


def batchnorm(trials: list[Trial]) -> Lesson:
    lesson = Lesson()
    scales = sorted({t.params["model.init_std"] for t in trials}, reverse=True)
    wins, lowest, stuck = 0, {False: 1.0, True: 1.0}, {False: 0, True: 0}
    epochs = max(len(t.metrics) for t in trials)
    lesson.lines.append(f"train_acc after {epochs} epochs, per init std: without / with "
                        f"BatchNorm")
    for scale in scales:
        runs = {bn: pick(trials, model__init_std=scale, model__batchnorm=bn)
                for bn in (False, True)}
        # A diverged run (NaN loss) has learned nothing: it counts as 0.
        accs = {bn: 0.0 if run.error else run.last("train_acc") for bn, run in runs.items()}
        wins += accs[True] > accs[False]
        for bn, acc in accs.items():
            lowest[bn] = min(lowest[bn], acc)
            stuck[bn] += acc <= NEAR_CHANCE
        shown = {bn: "diverged" if run.error else f"{accs[bn]:.3f}" for bn, run in runs.items()}
        lesson.lines.append(f"  std {scale:<8g} {shown[False]:>8s} / {shown[True]:>8s}"
                            f"{'  BatchNorm higher' if accs[True] > accs[False] else ''}")
    lesson.claims.append(Claim(
        f"with BatchNorm train accuracy after {epochs} epochs is higher at {wins} of "
        f"{len(scales)} init scales", wins >= BN_MAJORITY * len(scales)))
    lesson.claims.append(Claim(
        f"without BatchNorm {stuck[False]} of {len(scales)} init scales stay at chance or "
        f"diverge, with it {stuck[True]} (its lowest train_acc {lowest[True]:.3f})",
        stuck[True] == 0 and stuck[False] > 0, stable=False))
    return lesson


def overfitting(trials: list[Trial]) -> Lesson:
    lesson = Lesson()
    runs = {"no regularisation": pick(trials, train__weight_decay=0.0, model__dropout=0.0),
            "weight decay 0.1": pick(trials, train__weight_decay=0.1, model__dropout=0.0),
            "Dropout 0.2": pick(trials, train__weight_decay=0.0, model__dropout=0.2)}
    gaps = {}
    for name, trial in runs.items():
        train, test = trial.last("train_acc"), trial.last("test_acc")
        gaps[name] = train - test
        lesson.lines.append(f"{name:18s}: train_acc {train:.3f} test_acc {test:.3f} gap "
                            f"{gaps[name]:.3f} after {len(trial.metrics)} epochs")
    plain = runs["no regularisation"]
    lesson.claims.append(Claim(
        f"the 7-layer net memorises its {plain.spec['data']['train_limit']} samples: "
        f"train_acc {plain.last('train_acc'):.3f}, test_acc {plain.last('test_acc'):.3f}",
        plain.last("train_acc") >= MEMORISED, stable=False))
    for name in ("weight decay 0.1", "Dropout 0.2"):
        lesson.claims.append(Claim(
            f"{name} cuts the train–test gap from {gaps['no regularisation']:.3f} to "
            f"{gaps[name]:.3f}", gaps[name] < gaps["no regularisation"]))
    return lesson


def optimizers(trials: list[Trial]) -> Lesson:
    lesson = Lesson()
    at = min(LOSS_AT, min(t.losses[-1][0] for t in trials))
    losses = {}
    for trial in trials:
        name = trial.params["train.optimizer"]["type"]
        losses[name] = trial.loss_near(at)
        lesson.lines.append(
            f"{name:8s}: mean loss of iterations {at - LOSS_WINDOW + 1}-{at} "
            f"{fmt(losses[name])}, last {fmt(trial.losses[-1][1])} (iteration "
            f"{trial.losses[-1][0]}); val_acc {fmt(trial.last('val_acc'))}")
    listed = ", ".join(f"{name} {loss:.3f}" for name, loss in losses.items())
    sgd, others = losses.pop("sgd"), losses
    lesson.claims.append(Claim(
        f"SGD learns slowest: its loss after {at} iterations is the highest ({listed})",
        all(sgd > loss for loss in others.values())))
    adam = others.pop("adam")
    runner_up = min(others, key=others.get)
    lesson.claims.append(Claim(
        f"Adam's loss after {at} iterations is the lowest: {adam:.3f}, then {runner_up}'s "
        f"{others[runner_up]:.3f}", adam < others[runner_up], stable=False))
    return lesson


def lr_weight_decay(trials: list[Trial]) -> Lesson:
    lesson = Lesson()
    done = [t for t in trials if t.metrics and t.last("val_acc") is not None]
    ranked = sorted(done, key=lambda t: -t.last("val_acc"))
    top = max(1, round(len(done) * TOP_SHARE))
    lesson.lines.append(f"{len(done)} trials by val_acc (top {top} and the last):")
    for t in ranked[:top] + ranked[-1:]:
        lesson.lines.append(f"  lr {t.params['train.optimizer.lr']:9.3g}  weight decay "
                            f"{t.params['train.weight_decay']:9.3g}  val_acc "
                            f"{t.last('val_acc'):.3f}  test_acc {t.last('test_acc'):.3f}")
    top_lrs = [t.params["train.optimizer.lr"] for t in ranked[:top]]
    lesson.claims.append(Claim(
        f"the {len(top_lrs)} best trials by val_acc all have lr >= {GOOD_LR:g} (their lr: "
        f"{', '.join(f'{lr:.2g}' for lr in top_lrs)})", min(top_lrs) >= GOOD_LR))
    val = [t.last("val_acc") for t in done]
    by_lr = spearmanr(val, [t.params["train.optimizer.lr"] for t in done]).statistic
    by_wd = spearmanr(val, [t.params["train.weight_decay"] for t in done]).statistic
    lesson.claims.append(Claim(
        f"the learning rate decides, weight decay hardly matters in its range: rank "
        f"correlation of val_acc with lr {by_lr:.2f}, with weight decay {by_wd:.2f}",
        by_lr > abs(by_wd)))
    return lesson


@dataclass(frozen=True)
class Experiment:
    name: str                                    # examples/lecture/<name>.json
    title: str
    lesson: Callable[[list[Trial]], Lesson]
    quick: dict[tuple[str, ...], Any]            # request overrides for --quick


EXPERIMENTS = (
    Experiment("weight-init", "(a) weight init: std 0.01, Xavier, He; sigmoid and ReLU",
               weight_init, {("base", "data", "train_limit"): 2000,
                             ("base", "train", "epochs"): 2}),
    Experiment("batchnorm", "(b) BatchNorm or not, over 16 init scales", batchnorm,
               {("base", "data", "train_limit"): 500, ("base", "train", "epochs"): 8,
                ("space", "model.init_std"): {"grid": [1.0, 0.1, 0.01, 0.001]}}),
    Experiment("overfitting", "(c) 300 samples: overfitting, weight decay, Dropout",
               overfitting, {("base", "data", "train_limit"): 200,
                             ("base", "train", "epochs"): 40,
                             ("base", "train", "optimizer", "lr"): 0.1}),
    Experiment("optimizers", "(d) SGD, Momentum, AdaGrad, Adam on the same net", optimizers,
               {("base", "data", "train_limit"): 6400, ("base", "train", "epochs"): 2}),
    Experiment("lr-weight-decay", "(e) learning rate and weight decay, chosen on val_acc",
               lr_weight_decay, {("base", "train", "epochs"): 8, ("max_trials",): 12,
                                 ("base", "data", "val_fraction"): 0.02}),
)


# --- running the trials -----------------------------------------------------------------------

def load_request(experiment: Experiment, quick: bool) -> dict:
    request = json.loads((LECTURE / f"{experiment.name}.json").read_text())
    for path, value in (experiment.quick.items() if quick else ()):
        node = request
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = copy.deepcopy(value)
    return request


def _draw(rng: np.random.Generator, dist: dict) -> Any:
    (kind, arg), = dist.items()
    if kind in ("grid", "choice"):
        return copy.deepcopy(arg[int(rng.integers(len(arg)))])
    if kind == "uniform":
        return float(rng.uniform(*arg))
    return float(np.exp(rng.uniform(math.log(arg[0]), math.log(arg[1]))))


def trial_params(request: dict) -> list[dict[str, Any]]:
    """Every combination of a grid request; seeded draws of a random one."""
    space = request["space"]
    if request.get("strategy") == "grid":
        values = [next(iter(dist.values())) for dist in space.values()]
        return [dict(zip(space, combo)) for combo in itertools.product(*values)]
    rng = np.random.Generator(np.random.PCG64(request.get("seed", 0)))
    return [{path: _draw(rng, dist) for path, dist in space.items()}
            for _ in range(request["max_trials"])]


def trial_spec(request: dict, params: dict, index: int) -> dict:
    """The base with ``params`` set, checked by the API's schema (limits included)."""
    spec = copy.deepcopy(request["base"])
    for path, value in params.items():
        *parents, leaf = path.split(".")
        node = spec
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = copy.deepcopy(value)
    spec["name"] = f"{request['name']}-t{index}"
    return validate_spec(spec).document()


def run_directly(request: dict, data_dir) -> list[Trial]:
    trials = []
    for index, params in enumerate(trial_params(request)):
        spec = trial_spec(request, params, index)
        run = nncore.TrainingRun.from_spec(spec, data_dir)
        losses, activations = [], {}

        def on_epoch(_row, record, losses=losses, activations=activations):
            losses.extend(record.losses)
            activations[record.epoch] = list(record.activations)

        error = None
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                run.fit(on_epoch=on_epoch)
        except nncore.DivergenceError as exc:
            error = str(exc)
        trials.append(Trial(params, spec, run.metrics, losses, activations, error))
    return trials


def run_on_stack(request: dict, client) -> list[Trial]:
    sweep = client.submit_sweep(request).wait(timeout=SWEEP_TIMEOUT_S, progress=False)
    trials = []
    for entry in sorted(sweep.refresh().trials, key=lambda t: t.index):
        if entry.job_id is None:
            trials.append(Trial(entry.params, {}, [], [], {}, entry.status))
            continue
        losses = client.transport.get(f"/jobs/{entry.job_id}/losses")["items"]
        activations: dict[int, list[dict]] = {}
        for layer in client.transport.get(f"/jobs/{entry.job_id}/activations")["items"]:
            activations.setdefault(layer["epoch"], []).append(layer)
        trials.append(Trial(entry.params, client.job(entry.job_id).spec,
                            client.metrics(entry.job_id).rows(),
                            [(p["iteration"], p["loss"]) for p in losses], activations,
                            entry.error))
    return trials


def replay(experiment: Experiment, quick: bool, runner) -> list[tuple[Claim, bool]]:
    """Run one experiment, print its measurements and claims; (claim, checked) pairs."""
    request = load_request(experiment, quick)
    start = time.perf_counter()
    trials = runner(request)
    seconds = time.perf_counter() - start
    print(f"== {experiment.title} (examples/lecture/{experiment.name}.json): "
          f"{len(trials)} trials, {seconds:.0f} s", flush=True)
    for trial in trials:
        if trial.error:
            print(f"  trial {trial.params} ended early: {trial.error}")
    lesson = experiment.lesson(trials)
    for line in lesson.lines:
        print(f"  {line}")
    verdicts = []
    for claim in lesson.claims:
        checked = claim.stable or not quick
        verdict = ("PASS" if claim.passed else "FAIL") if checked else "info"
        print(f"  {verdict}  {claim.text}", flush=True)
        verdicts.append((claim, checked))
    return verdicts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="small data, few epochs and trials; check the stable claims only")
    p.add_argument("--only", action="append", choices=[e.name for e in EXPERIMENTS],
                   help="run only these experiments (repeatable)")
    p.add_argument("--api", help="run the sweeps on the nnq stack at this URL (nnq.Client)")
    p.add_argument("--data-dir", help="directory of the Fashion-MNIST IDX files")
    args = p.parse_args(argv)
    if args.api:
        from nnq import Client
        client = Client(url=args.api)

        def runner(request):
            return run_on_stack(request, client)
    else:
        def runner(request):
            return run_directly(request, args.data_dir)

    verdicts = []
    for experiment in EXPERIMENTS:
        if not args.only or experiment.name in args.only:
            verdicts += replay(experiment, args.quick, runner)
    checked = [claim for claim, was_checked in verdicts if was_checked]
    failed = [claim for claim in checked if not claim.passed]
    print(f"{len(checked) - len(failed)} of {len(checked)} checked claims PASS"
          f"{' (quick)' if args.quick else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
