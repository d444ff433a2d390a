"""Jinja filters that turn stored values into what a table cell shows."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from service.db import utcnow

SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
MISSING = "—"


def duration(job) -> str:
    """Run time: start to finish, or to now while the job runs; empty before it starts."""
    if job.started_at is None:
        return MISSING
    end = job.finished_at or utcnow()
    seconds = max(0, int((end - job.started_at).total_seconds()))
    hours, rest = divmod(seconds, SECONDS_PER_HOUR)
    minutes, secs = divmod(rest, SECONDS_PER_MINUTE)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def accuracy(value: float | None) -> str:
    """An accuracy in [0, 1] as a percentage with one decimal."""
    return MISSING if value is None else f"{100 * value:.1f} %"


def number(value: Any) -> str:
    """A metric or parameter: floats in 4 significant digits, anything else as given."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def when(value: dt.datetime | None) -> str:
    """A stored (naive UTC) time, to the second, marked as UTC."""
    return MISSING if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: dt.datetime | None) -> str:
    """A stored time as ISO 8601 with Z, for scripts (the API's format)."""
    return "" if value is None else value.replace(microsecond=0).isoformat() + "Z"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False)


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


FILTERS = {"duration": duration, "accuracy": accuracy, "number": number, "when": when,
           "iso": iso, "pretty_json": pretty_json, "compact_json": compact_json}
