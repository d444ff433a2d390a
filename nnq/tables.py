"""How nnq's commands write values and the per-epoch metrics table, so `nnq submit --wait`,
`nnq job`, `nnq sweep` and `python -m nncore train` show the same numbers the same way."""

from __future__ import annotations

from typing import Any

from rich.table import Table

METRIC_DECIMALS = 4
SECONDS_DECIMALS = 2
SIGNIFICANT_DIGITS = 3
MISSING = "-"


def format_metric(value: Any, decimals: int = METRIC_DECIMALS) -> str:
    """A loss, accuracy or probability at fixed decimals, so columns line up; "-" when there
    is none (val_acc when val_fraction is 0)."""
    return MISSING if value is None else f"{float(value):.{decimals}f}"


def format_value(value: Any) -> str:
    """Anything else for a cell (ids, names, spec parameters): floats to 3 significant digits,
    so 1e-05 stays readable on log-scale ranges; lists compact."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    if isinstance(value, list):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    return str(value)


def _metric_cell(column: str, value: Any) -> str:
    if column == "epoch":
        return format_value(value)
    if column == "seconds":
        return format_metric(value, SECONDS_DECIMALS)
    return format_metric(value)


def metrics_table(rows: list[dict]) -> Table:
    """One row per epoch (the API's metrics items or a TrainingRun's ``metrics``), a column per
    key in the rows' own order, so the producer's definition of a row is the only one."""
    table = Table(title="metrics per epoch")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(_metric_cell(column, row.get(column)) for column in columns))
    return table
