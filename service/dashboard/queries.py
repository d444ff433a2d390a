"""The query strings of the dashboard's pages, checked by pydantic like the API's query
models: a bad value is a 400 page naming it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import abort
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from werkzeug.datastructures import MultiDict

from nncore.schema import problems_from
from nnq.status import JobStatus
from service.db import MAX_ID

MAX_PAGE_NUMBER = 10**6  # keeps OFFSET far inside every database's integer range
MAX_COMPARED = 12  # more curves than this on one chart are unreadable
MAX_NAME = 200
NO_NUL = r"^[^\x00]*$"  # PostgreSQL refuses a NUL in a parameter

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PageNumber = Annotated[int, Field(ge=1, le=MAX_PAGE_NUMBER)]


class BadQuery(ValueError):
    """A query parameter the page cannot use; the message names it."""


def _parsed(model: Any, data: Any):
    """``data`` through a pydantic model or adapter; failures become BadQuery."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadQuery("; ".join(f"{path}: {msg}" for path, msg in problems_from(exc, data))
                       ) from None


def _given(args: MultiDict, *keys: str) -> dict[str, str]:
    """The non-blank values of ``keys`` (an empty form field means "not set")."""
    return {key: args[key].strip() for key in keys if args.get(key, "").strip()}


class _Page(BaseModel):
    page: PageNumber = 1


def page_number(args: MultiDict) -> int:
    """``?page=`` (1-based; 1 when absent)."""
    return _parsed(_Page, _given(args, "page")).page


class JobFilters(BaseModel):
    """The jobs list's filter form: status word, exact name, sweep id."""

    model_config = ConfigDict(frozen=True)

    status: Literal[JobStatus.values()] | None = None
    name: str | None = Field(None, max_length=MAX_NAME, pattern=NO_NUL)
    sweep: Id | None = None

    @classmethod
    def from_args(cls, args: MultiDict) -> JobFilters:
        return _parsed(cls, _given(args, "status", "name", "sweep"))

    def as_args(self) -> dict:
        """The filters that are set, as query arguments (for pagination links)."""
        return self.model_dump(exclude_none=True)


_ID = TypeAdapter(Id)


def compared_ids(args: MultiDict) -> list[int]:
    """``?jobs=1,2,3``: distinct job ids in the order given."""
    ids: list[int] = []
    for part in args.get("jobs", "").split(","):
        part = part.strip()
        if not part:
            continue
        try:  # ASCII digits only: int() would take " 1", "+1" or "1_0" too
            job_id = _ID.validate_python(part) if part.isascii() and part.isdigit() else None
        except ValidationError:
            job_id = None
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
