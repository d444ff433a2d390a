"""Health, in milliseconds: ``/health/live`` (the process answers) and ``/health`` (can this
API reach its database, its broker, and at least one worker?).

``/health`` makes one bounded database round trip and one Redis PING; the worker count comes
from the app's census (``worker_census``), so no request waits out a full Celery ping: it is
read at once while workers are known, and probed for at most 0.25 s while none is.
Deployments use ``/health/live`` as the liveness probe (restart the process when it fails)
and ``/health`` as the readiness check (send traffic while it is 200).
"""

from __future__ import annotations

import logging

from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy.exc import SQLAlchemyError

from service.api import API_PREFIX
from service.api.deps import db, setting
from service.api.schemas import HealthOut, LiveOut, dump
from service.api.worker_census import WORKER_PING_TIMEOUT_S, census
from service.db.engine import ping
from service.errors import DATABASE_RETRY_AFTER_S, error_responses

log = logging.getLogger(__name__)

bp = APIBlueprint("health", __name__, url_prefix=API_PREFIX,
                  abp_tags=[Tag(name="health", description="reachability of the parts")],
                  abp_responses=error_responses())
BROKER_TIMEOUT_S = 0.5
__all__ = ["BROKER_TIMEOUT_S", "WORKER_PING_TIMEOUT_S", "bp"]


def _db_ok() -> bool:
    try:
        ping(db())
        return True
    except SQLAlchemyError as exc:
        log.warning("health: database unreachable: %s", exc)
        return False


def _broker_ok(url: str) -> bool:
    """A Redis PING with a short timeout (other brokers: one quick connection attempt)."""
    try:
        if url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            conn = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT_S,
                                        socket_timeout=BROKER_TIMEOUT_S)
            try:
                return bool(conn.ping())
            finally:
                conn.close()
        from kombu import Connection

        with Connection(url, connect_timeout=BROKER_TIMEOUT_S) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        log.warning("health: broker unreachable: %s", exc)
        return False


@bp.get("/health", responses={200: HealthOut, 503: HealthOut})
def health():
    """Readiness: 200 with booleans while the database answers, 503 when it does not.
    ``workers``/``worker_count``: workers that answered this process's last ping (at most
    10 s old, 1 s while none answered)."""
    url = setting("NNQ_BROKER_URL")
    db_ok, broker_ok = _db_ok(), _broker_ok(url)
    workers = census(url).count() if broker_ok else 0
    status = "down" if not db_ok else ("ok" if broker_ok and workers else "degraded")
    out = {"status": status, "db": db_ok, "broker": broker_ok, "workers": workers > 0,
           "worker_count": workers}
    if db_ok:
        return dump(HealthOut, out), 200
    return dump(HealthOut, out), 503, {"Retry-After": str(DATABASE_RETRY_AFTER_S)}


@bp.get("/health/live", responses={200: LiveOut})
def live():
    """Liveness: the process serves requests; touches neither database nor broker."""
    return dump(LiveOut, {"status": "ok"})
