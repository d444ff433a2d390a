"""Datasets for nncore: IDX files (MNIST, Fashion-MNIST) and a seeded synthetic set."""

from nncore.data.datasets import DATASETS, Dataset, load_dataset
from nncore.data.idx import read_idx

__all__ = ["DATASETS", "Dataset", "load_dataset", "read_idx"]
