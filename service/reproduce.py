"""Reproduce a stored model: check its data is still what it was, then queue the same run.

The job trains the recorded spec (its seeds included) on the same device; the worker that
stores its model compares tensors and conditions (``service.db.lineage``). Before anything
is queued, the dataset files the original recorded are looked up where this process finds
them (``NNQ_DATA_DIR``) and hashed: a file that is gone or changed would make the verdict a
foregone ``differs``, so it is refused naming the file and both hashes. No Flask here.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from nncore import SpecError
from nncore.lineage import current_sha256
from service.db.jobs import get_job
from service.db.lineage import LineageView, lineage_of
from service.db.models import Job, Model, Reproduction
from service.db.reproductions import create_reproduction
from service.spec import validate_spec

NAME_SUFFIX = "-reproduction"
MAX_NAME = 200


class CannotReproduce(Exception):
    """The model cannot be re-trained as recorded; ``details`` says what is missing."""

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.message, self.details = message, details or []


def changed_files(lineage: LineageView, data_dir=None) -> list[dict]:
    """``{"file", "recorded_sha256", "current_sha256"}`` for each recorded dataset file that
    is gone (current None) or whose bytes changed."""
    recorded = {f["name"]: f["sha256"] for f in lineage.data.get("files") or []}
    if not recorded:
        return []
    current = current_sha256(lineage.data["dataset"], recorded, data_dir)
    return [{"file": name, "recorded_sha256": sha, "current_sha256": current[name]}
            for name, sha in recorded.items() if current[name] != sha]


def _describe(change: dict) -> str:
    now = change["current_sha256"]
    state = "changed" if now else "is gone"
    return (f"data file {change['file']} {state}: recorded sha256 {change['recorded_sha256']}, "
            f"now {now or 'missing'}")


def reproduce(session: Session, model: Model, data_dir=None) -> tuple[Reproduction, Job]:
    """Queue-ready job re-training ``model``'s recorded spec, and its reproduction row
    (committed; enqueue the job next). Raises CannotReproduce."""
    lineage = lineage_of(session, model)
    if lineage.spec is None:
        raise CannotReproduce(f"model {model.id} has no recorded spec: its job is gone and "
                              "it was stored before lineage was recorded")
    try:
        validate_spec(lineage.spec)
    except SpecError as exc:
        raise CannotReproduce(f"model {model.id}'s recorded spec is not a valid job spec "
                              f"today: {exc}") from None
    changes = changed_files(lineage, data_dir)
    if changes:
        raise CannotReproduce("; ".join(_describe(c) for c in changes), changes)
    original_job = get_job(session, lineage.job_id) if lineage.job_id is not None else None
    device = original_job.device if original_job is not None else lineage.spec.get("device",
                                                                                    "cpu")
    name = f"{model.name[:MAX_NAME - len(NAME_SUFFIX)]}{NAME_SUFFIX}"
    return create_reproduction(session, model, lineage.spec, device, name)
