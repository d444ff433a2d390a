"""Health: can this API reach its database, its broker, and at least one worker?"""

from __future__ import annotations

import logging

from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy.exc import SQLAlchemyError

from service.api import API_PREFIX
from service.api.deps import db, setting
from service.api.schemas import HealthOut, dump
from service.db.engine import ping
from service.errors import error_responses
from service.queue import client

log = logging.getLogger(__name__)

bp = APIBlueprint("health", __name__, url_prefix=API_PREFIX,
                  abp_tags=[Tag(name="health", description="reachability of the parts")],
                  abp_responses=error_responses())
BROKER_TIMEOUT_S = 0.5
WORKER_PING_TIMEOUT_S = 1.0


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


def _worker_count(url: str) -> int:
    try:
        return len(client(url).control.ping(timeout=WORKER_PING_TIMEOUT_S) or [])
    except Exception as exc:  # noqa: BLE001 - any failure means "no worker answered"
        log.warning("health: worker ping failed: %s", exc)
        return 0


@bp.get("/health", responses={200: HealthOut, 503: HealthOut})
def health():
    """200 with booleans while the database answers (503 when it does not)."""
    url = setting("NNQ_BROKER_URL")
    db_ok, broker_ok = _db_ok(), _broker_ok(url)
    workers = _worker_count(url) if broker_ok else 0
    status = "down" if not db_ok else ("ok" if broker_ok and workers else "degraded")
    out = {"status": status, "db": db_ok, "broker": broker_ok, "workers": workers > 0,
           "worker_count": workers}
    return dump(HealthOut, out), (200 if db_ok else 503)
