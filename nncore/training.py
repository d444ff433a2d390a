"""A whole training run from a job spec: shuffled epochs, metrics, checkpoints, resume.

The CLI and the workers both drive training through ``TrainingRun`` so a job trained
locally and one trained by the service follow the same steps bit for bit. A checkpoint
is a flat dict of arrays (params, buffers, optimizer state, RNG states, position, the
metrics so far and the best epoch's weights), so it goes through ``state_to_bytes`` without
pickle.

The training tools of the spec's ``train`` section act here: the learning-rate schedule sets
the optimizer's rate before every step (a function of the step alone), augmentation
transforms every training batch, and the best epoch by val_acc is tracked for
``keep_best`` and ``early_stopping``. None of them adds state a checkpoint lacks, so a
resumed run stays bit-exact with all of them on.

Besides its metrics row each epoch leaves an ``EpochRecord``: the per-iteration losses it kept
(every ``loss_stride``-th iteration and its last one) and the activation statistics of a fixed
probe batch. The losses kept so far in an epoch are part of the checkpoint, so a run resumed
mid-epoch hands on exactly the record an uninterrupted run would.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from nncore.augment import Augmenter
from nncore.backend import get_xp, to_numpy
from nncore.data import Dataset, load_dataset
from nncore.data.datasets import IMAGE_SHAPE
from nncore.errors import Cancelled, DivergenceError
from nncore.network import Network
from nncore.optimizers import make_optimizer
from nncore.rng import rng_from_arrays, rng_to_arrays
from nncore.schedules import Plan
from nncore.spec import JobSpec, TrainSpec, parse_spec

EVAL_BATCH = 1000
METRIC_KEYS = ("epoch", "train_loss", "train_acc", "val_acc", "test_acc", "seconds")
# The per-iteration loss curve a job keeps: at most this many strided points (plus each
# epoch's last iteration), so a 200-epoch job stays a few thousand rows.
MAX_LOSS_POINTS = 2000
# Samples in the fixed probe batch the activation statistics are measured on.
PROBE_SIZE = 256


def loss_stride(total_iterations: int) -> int:
    """Keep every n-th iteration's loss: 1 for short jobs, else ``MAX_LOSS_POINTS`` bounds them."""
    return max(1, math.ceil(total_iterations / MAX_LOSS_POINTS))


def best_epoch(rows: list[dict], min_delta: float = 0.0) -> int | None:
    """The epoch whose val_acc beat every earlier epoch's by more than ``min_delta``, last
    such one; ties keep the earlier epoch. None while no epoch has a val_acc."""
    best, best_value = None, -math.inf
    for row in rows:
        value = row["val_acc"]
        if value is not None and (best is None or value > best_value + min_delta):
            best, best_value = row["epoch"], value
    return best


def probe_batch(dataset: Dataset) -> np.ndarray:
    """The first ``PROBE_SIZE`` validation samples, else training samples: unshuffled, so the
    same inputs every epoch and on every resume."""
    source = dataset.x_val if len(dataset.x_val) else dataset.x_train
    return source[:PROBE_SIZE]                                 # (P, *input_shape)


@dataclass(frozen=True)
class EpochRecord:
    """What an epoch leaves besides its metrics row (``on_epoch``'s second argument)."""

    epoch: int
    losses: tuple[tuple[int, float], ...]  # (iteration 1-based across epochs, train-mode loss)
    activations: tuple[dict, ...]          # Network.activation_stats on the probe batch
    probe_size: int


class TrainingRun:
    """Network + optimizer + data + position; ``fit`` trains, ``checkpoint``/``restore`` resume."""

    def __init__(self, network, optimizer, dataset, config: TrainSpec, backend: str = "numpy"):
        self.network, self.optimizer = network, optimizer
        self.dataset, self.config = dataset, config
        self.spec: JobSpec | None = None  # the job spec, when built by from_spec
        self._xp = xp = get_xp(backend)
        dtype = np.dtype(config.dtype)
        # Inputs go to the backend in the network's dtype once, not per batch.
        self._x_train, self._x_val, self._x_test = (
            xp.asarray(x.astype(dtype, copy=False))
            for x in (dataset.x_train, dataset.x_val, dataset.x_test))
        self._t_train = xp.asarray(dataset.t_train)
        # train_acc's samples: the first train_acc_samples (the book's Trainer), else all.
        self._train_acc_count = min(len(dataset.t_train),
                                    config.train_acc_samples or len(dataset.t_train))
        self._probe = xp.asarray(probe_batch(dataset).astype(dtype, copy=False))
        self._rng = np.random.Generator(np.random.PCG64(config.seed))
        self._augment = Augmenter(config.augment, config.seed, IMAGE_SHAPE, xp)
        self.steps_per_epoch = math.ceil(len(dataset.x_train) / config.batch_size)
        self.total_iterations = config.epochs * self.steps_per_epoch
        self.loss_every = loss_stride(self.total_iterations)
        self._plan = Plan(self.steps_per_epoch, self.total_iterations)
        self._peak_lr = optimizer.hyper["lr"]  # the schedule scales this one
        self.metrics: list[dict] = []
        self.epoch = 0              # epochs completed
        self.iteration = 0          # steps completed, across epochs
        self._perm = None           # the current epoch's order while it is under way
        self._sums = np.zeros(2)    # loss*n, n over the current epoch's steps
        self._elapsed = 0.0         # seconds already spent in the current epoch
        self._losses: list[tuple[int, float]] = []  # the current epoch's kept losses
        self._best_state: dict[str, np.ndarray] | None = None  # keep_best: its weights

    @classmethod
    def from_spec(cls, job_spec, data_dir=None, backend: str = "numpy") -> TrainingRun:
        """Dataset, network and optimizer from a job spec (a dict, or an already parsed
        ``JobSpec``: the spec is then neither validated nor expanded again)."""
        spec = parse_spec(job_spec)
        config, expansion = spec.train, spec.expansion
        dataset = load_dataset(spec.data.dataset, data_dir, flatten=len(expansion.input_shape) == 1,
                               **spec.data.options())
        network = Network(expansion.layers, expansion.input_shape, spec.num_classes,
                          seed=config.seed, dtype=config.dtype,
                          weight_decay=config.weight_decay, backend=backend)
        run = cls(network, make_optimizer(config.optimizer), dataset, config, backend)
        run.spec = spec
        return run

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the best val_acc so far, when the spec judges epochs by it."""
        if not self.config.selects_epochs:
            return None
        stopping = self.config.early_stopping
        return best_epoch(self.metrics, stopping.min_delta if stopping else 0.0)

    @property
    def stopped_early(self) -> bool:
        """Whether ``early_stopping``'s patience ran out (then ``fit`` trains no more)."""
        stopping, best = self.config.early_stopping, self.best_epoch
        return stopping is not None and best is not None and \
            self.epoch - best >= stopping.patience

    @property
    def model_epoch(self) -> int:
        """The epoch whose weights the network holds once ``fit`` returns: the best one with
        ``keep_best``, else the last one trained."""
        best = self.best_epoch if self.config.keep_best else None
        return best if best is not None else self.epoch

    def model_metrics(self) -> dict:
        """The metrics row of ``model_epoch``: the stored model's own numbers."""
        return dict(self.metrics[self.model_epoch - 1]) if self.metrics else {}

    def learning_rate(self, step: int) -> float:
        """The rate of step ``step`` (0-based across epochs) under the spec's schedule."""
        return self.config.schedule.lr(step, self._peak_lr, self._plan)

    def fit(self, on_iteration=None, on_epoch=None, should_stop=None) -> list[dict]:
        """Train the remaining epochs, or until early stopping; returns all per-epoch metrics.

        ``train_loss`` is the sample-weighted mean of the train-mode batch losses seen during
        the epoch (free: no extra pass); ``train_acc``, ``val_acc`` and ``test_acc`` come from
        eval-mode passes after the epoch, ``train_acc`` over the training set as the epoch
        left the network (the first ``train_acc_samples`` of it when set). With ``keep_best``
        the network holds the best epoch's weights when this returns. ``on_epoch(metrics,
        record)`` gets the row and the epoch's ``EpochRecord``. Raises Cancelled and
        DivergenceError.
        """
        while self.epoch < self.config.epochs and not self.stopped_early:
            start = time.perf_counter() - self._elapsed
            if self._perm is None:
                self._perm = self._rng.permutation(len(self.dataset.x_train))
            self._run_epoch(on_iteration, should_stop, start)
            row = self._epoch_metrics(time.perf_counter() - start)
            record = self._epoch_record()
            self.metrics.append(row)
            self.epoch += 1
            if self.config.keep_best and self.best_epoch == self.epoch:
                self._best_state = self.network.state_dict()
            self._perm, self._sums, self._elapsed, self._losses = None, np.zeros(2), 0.0, []
            if on_epoch is not None:
                on_epoch(dict(row), record)
        if self._best_state is not None:
            self.network.load_state_dict(self._best_state)
        return [dict(row) for row in self.metrics]

    def _run_epoch(self, on_iteration, should_stop, start):
        net, bs = self.network, self.config.batch_size
        first = self.iteration - self.epoch * self.steps_per_epoch
        for step in range(first, self.steps_per_epoch):
            if should_stop is not None and should_stop():
                raise Cancelled(f"cancelled at epoch {self.epoch + 1}, "
                                f"iteration {self.iteration + 1}")
            idx = self._xp.asarray(self._perm[step * bs:(step + 1) * bs])
            x, t = self._augment(self._x_train[idx]), self._t_train[idx]
            grads = net.gradient(x, t)
            loss = float(net.last_loss)
            if not math.isfinite(loss):
                raise DivergenceError(f"loss became {loss} at epoch {self.epoch + 1}, "
                                      f"iteration {self.iteration + 1}")
            self.optimizer.hyper["lr"] = self.learning_rate(self.iteration)
            self.optimizer.update(net.params, grads)
            self._sums += (loss * len(idx), len(idx))
            self.iteration += 1
            if self.iteration % self.loss_every == 0 or step == self.steps_per_epoch - 1:
                self._losses.append((self.iteration, loss))
            self._elapsed = time.perf_counter() - start
            if on_iteration is not None:
                on_iteration({"epoch": self.epoch + 1, "iteration": self.iteration,
                              "total_iterations": self.total_iterations})

    def _epoch_metrics(self, seconds: float) -> dict:
        loss_sum, n = self._sums
        count = self._train_acc_count
        return {"epoch": self.epoch + 1, "train_loss": float(loss_sum / n),
                "train_acc": self.accuracy(self._x_train[:count], self.dataset.t_train[:count]),
                "val_acc": self.accuracy(self._x_val, self.dataset.t_val),
                "test_acc": self.accuracy(self._x_test, self.dataset.t_test),
                "seconds": seconds}

    def _epoch_record(self) -> EpochRecord:
        return EpochRecord(epoch=self.epoch + 1, losses=tuple(self._losses),
                           activations=tuple(self.network.activation_stats(self._probe)),
                           probe_size=len(self._probe))

    def accuracy(self, x, t) -> float | None:
        """Eval-mode accuracy; None for an empty set (e.g. val_fraction 0)."""
        return self.network.accuracy(x, t, EVAL_BATCH) if len(t) else None

    def checkpoint(self) -> dict[str, np.ndarray]:
        """Everything needed to continue exactly here, as a flat name -> array dict."""
        state = {f"net/{k}": to_numpy(v) for k, v in self.network.state_dict().items()}
        state.update({f"opt/{k}": to_numpy(v) for k, v in self.optimizer.state_dict().items()})
        state.update({f"rng/shuffle/{k}": v for k, v in rng_to_arrays(self._rng).items()})
        state.update({f"rng/net/{k}": to_numpy(v) for k, v in self.network.rng_state().items()})
        state.update({f"rng/augment/{k}": v for k, v in self._augment.state().items()})
        if self._best_state is not None:
            state.update({f"best/{k}": v for k, v in self._best_state.items()})
        state["pos/epoch"] = np.array(self.epoch, np.int64)
        state["pos/iteration"] = np.array(self.iteration, np.int64)
        state["pos/sums"] = self._sums.copy()
        state["pos/elapsed"] = np.array(self._elapsed)
        state["pos/loss_iterations"] = np.array([i for i, _ in self._losses], np.int64)
        state["pos/losses"] = np.array([loss for _, loss in self._losses], np.float64)
        if self._perm is not None:
            state["pos/perm"] = self._perm.copy()
        for key in METRIC_KEYS:
            values = [np.nan if row[key] is None else row[key] for row in self.metrics]
            state[f"metrics/{key}"] = np.array(values, np.int64 if key == "epoch" else np.float64)
        return state

    def restore(self, state: dict) -> None:
        """Load a ``checkpoint()``; the next ``fit`` continues where it was taken."""
        def section(prefix):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

        self.network.load_state_dict(section("net/"))
        self.optimizer.load_state_dict(section("opt/"), xp=self._xp)
        self.network.set_rng_state(section("rng/net/"))
        self._rng = rng_from_arrays(section("rng/shuffle/"))
        if section("rng/augment/"):
            self._augment.set_state(section("rng/augment/"))
        self._best_state = section("best/") or None
        self.epoch = int(state["pos/epoch"])
        self.iteration = int(state["pos/iteration"])
        sums = np.asarray(state["pos/sums"], np.float64)
        # Older checkpoints kept a correct-prediction count between the loss sum and n.
        self._sums = np.array([sums[0], sums[-1]])
        self._elapsed = float(state["pos/elapsed"])
        self._perm = np.array(state["pos/perm"]) if "pos/perm" in state else None
        # Checkpoints written before losses were kept have none: that epoch's curve starts late.
        self._losses = [(int(i), float(loss)) for i, loss in
                        zip(state.get("pos/loss_iterations", ()), state.get("pos/losses", ()))]
        columns = [state[f"metrics/{key}"] for key in METRIC_KEYS]
        self.metrics = [
            {key: int(v) if key == "epoch" else (None if math.isnan(v) else float(v))
             for key, v in zip(METRIC_KEYS, row)}
            for row in zip(*columns)
        ]
