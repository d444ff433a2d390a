"""The ``data`` section of a job spec: which dataset, how it is split, and for the synthetic
set how much of it. ``load_dataset`` takes its options through this one definition."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..schema import Seed, Strict

DATASETS = ("mnist", "fashion-mnist", "synthetic")
TRAIN_SUBSETS = ("first", "random")
MAX_TRAIN_LIMIT = 10**9
MIN_SYNTHETIC_SAMPLES = 10
MAX_SYNTHETIC_SAMPLES = 100_000


class DataSpec(Strict):
    dataset: Literal[DATASETS] = Field(description="mnist, fashion-mnist (IDX files) or synthetic")
    train_limit: int | None = Field(None, ge=1, le=MAX_TRAIN_LIMIT,
                                    description="cap on training samples (the book's 300)")
    train_subset: Literal[TRAIN_SUBSETS] = Field(
        "first", description="which train_limit samples: the first N in file order (the "
                             "book's x_train[:300]), or N drawn with data.seed")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0,
                                description="share of the training set held out for val_acc")
    samples: int = Field(2000, ge=MIN_SYNTHETIC_SAMPLES, le=MAX_SYNTHETIC_SAMPLES,
                         description="synthetic only")
    seed: Seed = Field(0, description="validation split; synthetic data")

    def options(self) -> dict:
        """The loader's keywords (everything but the dataset's name)."""
        return self.model_dump(exclude={"dataset"})
