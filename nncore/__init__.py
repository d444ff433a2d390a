"""nncore: the NumPy network core of nnq (Deep Learning from Scratch ch. 5-8, trained right).

Public surface (workers, the service and outside checks rely on these names):
``build``, ``Network``, ``expand_model``, ``count_params``, ``make_optimizer``,
``state_to_bytes``, ``state_from_bytes``, ``load_dataset``, ``TrainingRun``, the registries
``LAYERS``, ``PRESETS``, ``OPTIMIZERS``, ``DATASETS``, the job spec (``JobSpec``,
``parse_spec``) and the errors ``SpecError``, ``DataError``, ``DivergenceError``,
``Cancelled``. See docs/nncore.md.
"""
from .backend import cupy_available, get_xp, to_numpy
from .data import DATASETS, Dataset, load_dataset, read_idx
from .errors import Cancelled, DataError, DivergenceError, SpecError
from .layers import LAYERS
from .network import Network, build
from .optimizers import OPTIMIZERS, Optimizer, make_optimizer
from .presets import PRESETS
from .rng import rng_from_arrays, rng_to_arrays
from .spec import JobSpec, count_params, expand_model, parse_spec
from .state import state_from_bytes, state_to_bytes
from .training import TrainingRun

__all__ = [
    "Cancelled", "DATASETS", "DataError", "Dataset", "DivergenceError", "JobSpec", "LAYERS",
    "Network", "OPTIMIZERS", "Optimizer", "PRESETS", "SpecError", "TrainingRun", "build",
    "count_params", "cupy_available", "expand_model", "get_xp", "load_dataset", "make_optimizer",
    "parse_spec", "read_idx", "rng_from_arrays", "rng_to_arrays", "state_from_bytes",
    "state_to_bytes", "to_numpy",
]
