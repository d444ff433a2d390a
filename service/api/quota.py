"""The queued-jobs quota: a submission that would leave more than ``NNQ_MAX_QUEUED_PER_TOKEN``
jobs queued is refused with 429 and Retry-After, before anything is stored.

nnq has one API token, so the quota bounds what all its holders (without a token: everyone)
may have waiting. A repeated Idempotency-Key adds nothing and is never refused. Two
submissions racing at the limit may both pass: the bound is exact up to the number of
concurrent requests.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.api.deps import db, setting
from service.db import Job, Sweep, fleet, transactional
from service.errors import TooManyRequests

QUOTA_SETTING = "NNQ_MAX_QUEUED_PER_TOKEN"
# Queued jobs start as workers free up; a client that hit the quota asks again after this.
QUEUE_FULL_RETRY_AFTER_S = 30


@transactional
def _known_key(session: Session, model: type[Job | Sweep], key: str) -> bool:
    return session.scalar(select(model.id).where(model.idempotency_key == key)) is not None


def check_queue_room(adding: int = 1, *, idempotency_key: str | None = None,
                     kind: type[Job | Sweep] = Job) -> None:
    """Raise TooManyRequests when ``adding`` more queued jobs would pass the quota (unless
    ``idempotency_key`` already names a ``kind`` row: the repeat gets that row back)."""
    limit = setting(QUOTA_SETTING)
    queued = fleet.queued_count(db())
    if queued + adding <= limit:
        return
    if idempotency_key is not None and _known_key(db(), kind, idempotency_key):
        return
    raise TooManyRequests(
        f"{queued} jobs are queued and the limit is {limit} ({QUOTA_SETTING}); this request "
        f"would add {adding}. Retry after {QUEUE_FULL_RETRY_AFTER_S} s, or cancel queued jobs",
        details={"queued": queued, "limit": limit, "adding": adding},
        headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)})
