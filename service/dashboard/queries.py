"""The query strings of the list pages, checked: a bad value is a 400 page naming it."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort
from werkzeug.datastructures import MultiDict

from nnq.status import JobStatus
from service.db import MAX_ID

MAX_PAGE_NUMBER = 10**6  # keeps OFFSET far inside every database's integer range
MAX_COMPARED = 12  # more curves than this on one chart are unreadable
NUL = "\x00"


class BadQuery(ValueError):
    """A query parameter the page cannot use; the message names it."""


def _whole(raw: str, low: int, high: int) -> int | None:
    """``raw`` as an int in [low, high], else None. ASCII digits only and no longer than
    ``high``: ``str.isdigit`` accepts "²", which ``int`` rejects, and ``int`` refuses strings
    of more than 4,300 digits; either would be a 500 instead of a 400."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)):
        return None
    value = int(raw)
    return value if low <= value <= high else None


def _int(args: MultiDict, key: str, *, low: int, high: int) -> int | None:
    raw = args.get(key, "").strip()
    if not raw:
        return None
    value = _whole(raw, low, high)
    if value is None:
        raise BadQuery(f"{key}: expected a whole number from {low} to {high}, got {raw!r}")
    return value


def page_number(args: MultiDict) -> int:
    """``?page=`` (1-based; 1 when absent)."""
    return _int(args, "page", low=1, high=MAX_PAGE_NUMBER) or 1


@dataclass(frozen=True)
class JobFilters:
    """The jobs list's filter form: status word, exact name, sweep id."""

    status: str | None = None
    name: str | None = None
    sweep: int | None = None

    @classmethod
    def from_args(cls, args: MultiDict) -> JobFilters:
        status = args.get("status", "").strip() or None
        if status is not None and status not in set(JobStatus):
            raise BadQuery(f"status: expected one of {', '.join(JobStatus)}, got {status!r}")
        name = args.get("name", "").strip() or None
        if name is not None and NUL in name:  # PostgreSQL rejects it in a parameter: a 500
            raise BadQuery("name: must not contain a NUL character")
        return cls(status=status, name=name, sweep=_int(args, "sweep", low=1, high=MAX_ID))

    def as_args(self) -> dict:
        """The filters that are set, as query arguments (for pagination links)."""
        return {k: v for k, v in vars(self).items() if v is not None}


def compared_ids(args: MultiDict) -> list[int]:
    """``?jobs=1,2,3``: distinct job ids in the order given."""
    ids: list[int] = []
    for part in args.get("jobs", "").split(","):
        part = part.strip()
        if not part:
            continue
        job_id = _whole(part, 1, MAX_ID)
        if job_id is None:
            raise BadQuery(f"jobs: expected comma-separated job ids, got {part!r}")
        if job_id not in ids:
            ids.append(job_id)
    if len(ids) > MAX_COMPARED:
        raise BadQuery(f"jobs: at most {MAX_COMPARED} jobs can be compared at once")
    return ids


def known_id(value: int) -> int:
    """A path id the database could hold; larger ones are unknown (404), not an overflow."""
    if value > MAX_ID:
        abort(404, f"no such id {value}")
    return value
