"""Response and query models of the sweeps API (the request is service.sweeps.validate's
SweepRequest), kept apart from schemas.py so each resource's models stay small."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from nnq.status import TRIAL_PENDING, TRIAL_STATUSES, SweepStatus
from service.api.schemas import (
    ALIAS_PATTERN,
    MAX_ID,
    MAX_OFFSET,
    MAX_PAGE,
    Out,
    UtcTime,
)


class SweepPath(BaseModel):
    sweep_id: int = Field(ge=1, le=MAX_ID)


class SweepQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal[SweepStatus.values()] | None = None
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str = Field(pattern=ALIAS_PATTERN, description="e.g. best-fashion; starts with a letter")


# How many trials are in each status (a field per status of nnq.status), plus ``total``.
TrialCounts = create_model(
    "TrialCounts", __base__=Out, __module__=__name__,
    **{status: (int, Field(description="no job yet") if status == TRIAL_PENDING else ...)
       for status in TRIAL_STATUSES},
    total=(int, ...))


class TrialOut(Out):
    """A trial; accuracies are those of its last recorded epoch."""

    index: int
    job_id: int | None
    params: dict[str, Any]
    status: Literal[TRIAL_STATUSES]
    val_acc: float | None
    train_acc: float | None
    test_acc: float | None = Field(description="shown for the record; never used to rank")
    epochs: int
    model_id: int | None
    error: str | None
    chosen: bool = Field(True, description="false while an adaptive strategy (tpe, cmaes, gp) "
                                            "has yet to choose the trial's params: it does "
                                            "when the trial starts; params is {} until then")


class SweepSummary(Out):
    id: int
    name: str
    status: str
    metric: str
    strategy: str
    counts: TrialCounts
    best_job_id: int | None
    error: str | None
    created_at: UtcTime
    updated_at: UtcTime
    finished_at: UtcTime | None


class SweepOut(SweepSummary):
    trials: list[TrialOut] = Field(description="best first by the metric's last-epoch value")
    best: TrialOut | None = Field(description="the best succeeded trial")
    request: dict[str, Any] = Field(description="the validated request, defaults filled in")


class SweepList(Out):
    items: list[SweepSummary]
    total: int
    limit: int
    offset: int


class PromoteOut(Out):
    alias: str
    model_id: int
    sweep_id: int
    trial: TrialOut
    updated_at: UtcTime


class ImportanceOut(Out):
    param: str = Field(description="a searched spec path")
    importance: float = Field(description="its share of the metric's variation; all sum to 1")


class ImportancesOut(Out):
    """Which parameters mattered, by Optuna's importance evaluator over succeeded trials."""

    sweep_id: int
    metric: str
    evaluator: str = Field(description="Optuna's evaluator (PED-ANOVA)")
    trials: int = Field(description="succeeded trials evaluated")
    importances: list[ImportanceOut] = Field(description="most important first")
    note: str | None = Field(description="why the list is empty, if it is")


class HistoryPoint(Out):
    index: int
    value: float = Field(description="the metric at the trial's last epoch")
    best: float = Field(description="the best value of the trials up to this index")


class HistoryOut(Out):
    """The optimization history: each succeeded trial's metric by index, and the best so far."""

    sweep_id: int
    metric: str
    points: list[HistoryPoint]


class ParallelTrial(Out):
    index: int
    value: float
    params: dict[str, Any]


class ParallelOut(Out):
    """Parallel coordinates: each succeeded trial's parameters and its metric."""

    sweep_id: int
    metric: str
    params: list[str] = Field(description="the axes: the searched paths, most important first")
    trials: list[ParallelTrial]
