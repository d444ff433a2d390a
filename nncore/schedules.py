"""Learning-rate schedules: the rate of every training step as a pure function of the step.

A schedule scales the optimizer's ``lr`` (its peak rate), whatever the optimizer. The rate
depends on the step number alone, so a run resumed from a checkpoint needs no schedule state
and takes the same steps bit for bit. Defining a ``Schedule`` subclass registers it in
``SCHEDULES`` under its ``type``.

With ``S`` steps per epoch, ``T`` steps in all and ``W = warmup_epochs * S``, step ``k``
(0-based, counted across epochs) uses:

- during warmup (``k < W``, any schedule): ``lr * (k + 1) / W``, a linear climb to ``lr``;
- ``constant``: ``lr``;
- ``step``: ``lr * gamma ** floor(k / (every_epochs * S))``, epochs counted from the start;
- ``cosine``: ``min_lr + (lr - min_lr) * (1 + cos(pi * (k - W) / (T - W))) / 2``, annealed
  over the steps after warmup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field

from .schema import Strict, literal_value, tag_of, tagged_union

DEFAULT_SCHEDULE = "constant"

SCHEDULES: dict[str, type[Schedule]] = {}


@dataclass(frozen=True)
class Plan:
    """The shape of a run a schedule spreads its rates over."""

    steps_per_epoch: int
    total_steps: int


class Schedule(Strict):
    """A learning-rate schedule; subclasses declare their fields and ``decayed``."""

    name: ClassVar[str] = ""

    type: str  # each schedule's own Literal; declared here so that it comes first
    warmup_epochs: int = Field(0, ge=0, description="linear warmup to lr over these epochs")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        cls.name = literal_value(cls, "type")
        SCHEDULES[cls.name] = cls

    def lr(self, step: int, base_lr: float, plan: Plan) -> float:
        """The rate of step ``step`` (0-based across epochs) for peak rate ``base_lr``."""
        warmup = self.warmup_epochs * plan.steps_per_epoch
        if step < warmup:
            return base_lr * (step + 1) / warmup
        return self.decayed(step, base_lr, plan, warmup)

    def decayed(self, step: int, base_lr: float, plan: Plan, warmup: int) -> float:
        raise NotImplementedError


class ConstantSchedule(Schedule):
    type: Literal["constant"] = DEFAULT_SCHEDULE

    def decayed(self, step, base_lr, plan, warmup):
        return base_lr


class StepSchedule(Schedule):
    """PyTorch's StepLR: multiply the rate by ``gamma`` every ``every_epochs`` epochs."""

    type: Literal["step"] = "step"
    every_epochs: int = Field(10, ge=1, description="epochs between two decays")
    gamma: float = Field(0.1, gt=0.0, lt=1.0, description="factor applied at each decay")

    def decayed(self, step, base_lr, plan, warmup):
        return base_lr * self.gamma ** (step // (self.every_epochs * plan.steps_per_epoch))


class CosineSchedule(Schedule):
    """PyTorch's CosineAnnealingLR over the steps after warmup, from ``lr`` to ``min_lr``."""

    type: Literal["cosine"] = "cosine"
    min_lr: float = Field(0.0, ge=0.0, description="the rate the last steps approach")

    def decayed(self, step, base_lr, plan, warmup):
        progress = (step - warmup) / (plan.total_steps - warmup)
        return self.min_lr + (base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2


ScheduleSpec = tagged_union(SCHEDULES, tag_of("type", DEFAULT_SCHEDULE), "schedule")
