"""Workers: the live Celery workers and the jobs they hold, queue depths, who waits longest.

Workers answer Celery's remote control (a ping, then ``stats`` for pids and
``active_queues``), joined with running jobs' lease owners (``host:pid:token``). Queue depth
is the Redis list length of each queue on the broker. A broker that does not answer gives no
workers and empty queues, never an error: this page is how one notices that.
"""

from __future__ import annotations

import logging

from flask_openapi3 import APIBlueprint, Tag

from service.api import API_PREFIX
from service.api.deps import db, setting
from service.api.health import BROKER_TIMEOUT_S, WORKER_PING_TIMEOUT_S
from service.api.worker_census import census
from service.api.jobs import job_dict
from service.api.run_schemas import WorkersOut
from service.api.schemas import dump
from service.db import fleet
from service.db.attempts import owner_parts
from service.db.models import Job
from service.errors import error_responses
from service.queue import QUEUES, client

log = logging.getLogger(__name__)

bp = APIBlueprint("workers", __name__, url_prefix=API_PREFIX,
                  abp_tags=[Tag(name="workers", description="workers, queues, waiting jobs")],
                  abp_responses=error_responses())
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
QUEUE_NAMES = sorted(set(QUEUES.values()))


def _queue_depths(url: str) -> dict[str, int] | None:
    """LLEN of each queue's Redis list (kombu keeps un-prioritised messages under the queue's
    name); None when the broker does not answer or is not Redis."""
    if not url.startswith(REDIS_SCHEMES):
        return None
    import redis

    conn = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT_S,
                                socket_timeout=BROKER_TIMEOUT_S)
    try:
        return {name: int(conn.llen(name)) for name in QUEUE_NAMES}
    except redis.RedisError as exc:
        log.warning("workers: broker unreachable: %s", exc)
        return None
    finally:
        conn.close()


def _live_workers(url: str) -> list[dict]:
    """name, host, pid, queues and the pids that run its tasks, for each answering worker.

    The ping stops at as many answers as the app's census counts (``worker_census``), so the
    page does not wait out the ping's timeout; a worker started since the census last counted
    (at most its ``SEEN_TTL_S`` ago) shows up on a later request.
    """
    expected = census(url).count()
    if not expected:
        return []
    try:
        control = client(url).control
        nodes = [name for reply in control.ping(timeout=WORKER_PING_TIMEOUT_S,
                                                limit=expected) or []
                 for name in reply]
        if not nodes:
            return []
        inspect = control.inspect(destination=nodes, timeout=WORKER_PING_TIMEOUT_S,
                                  limit=len(nodes))
        stats, queues = inspect.stats() or {}, inspect.active_queues() or {}
    except Exception as exc:  # noqa: BLE001 - any failure means "no worker answered"
        log.warning("workers: remote control failed: %s", exc)
        return []
    found = []
    for name in sorted(nodes):
        info = stats.get(name) or {}
        pid = info.get("pid")
        pool = (info.get("pool") or {}).get("processes") or []
        found.append({"name": name, "host": name.partition("@")[2] or name, "pid": pid,
                      "queues": sorted(q["name"] for q in queues.get(name) or []),
                      "pids": {p for p in (pid, *pool) if p is not None}})
    return found


def _short(host: str) -> str:
    return host.partition(".")[0]


def _held_by(worker: dict, held: list[Job]) -> Job | None:
    """The first running job whose lease owner is this worker (its host and one of its pids)."""
    for job in held:
        host, pid = owner_parts(job.lease_owner)
        if pid in worker["pids"] and _short(host) == _short(worker["host"]):
            return job
    return None


@bp.get("/workers", responses={200: WorkersOut})
def list_workers():
    """Each live worker with the job it holds and its lease expiry, queue depths (cpu, gpu),
    and up to 10 queued jobs, the one waiting longest first."""
    url = setting("NNQ_BROKER_URL")
    depths = _queue_depths(url)
    live = _live_workers(url) if depths is not None else []
    held = fleet.held_jobs(db()) if live else []
    workers = []
    for worker in live:
        job = _held_by(worker, held)
        workers.append({**worker, "job_id": job.id if job else None,
                        "lease_expires_at": job.lease_expires_at if job else None})
    queues = [{"name": name, "depth": (depths or {}).get(name, 0)}
              for name in QUEUE_NAMES]
    return dump(WorkersOut, {"workers": workers, "queues": queues,
                             "waiting": [job_dict(j) for j in fleet.waiting_jobs(db())]})
