"""Two worker hosts (network namespaces on a private bridge, tests/chaos/hosts.py) reach a
PostgreSQL cluster and a Redis of the test's own over the bridge. One host's link is cut while
it trains a job: the job moves to the other host within the lease plus a reconciler round;
when the link comes back, the cut-off worker's late writes reach the database and are refused
(its lease is gone), so no metric row, checkpoint or model of its lands after the cut, and the
job ends with exactly one model, bit-identical to an uninterrupted run.

Who wrote each row is recorded by the database itself: the hosts connect with their own
``application_name`` and test-only triggers copy it, with the time the statement ran, into an
audit table in the writer's own transaction (a refused or rolled-back write leaves no audit
row). The cluster also logs every statement, which shows the late writes arriving.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from threadpoolctl import threadpool_limits

import nncore
from nnq.processes import port_in_use, redis_reachable, stop_process
from service.db import (
    EpochMetric,
    JobAttempt,
    Model,
    ModelTensor,
    engine_for,
    session_factory,
)
from service.db import jobs as store
from service.db.tensors import encode_tensor
from service.queue import enqueue
from tests import support
from tests.chaos import hosts
from tests.chaos.cluster import UNPRIVILEGED, PrivateCluster
from tests.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

LEASE_S = 4
RECONCILE_ROUND_S = LEASE_S / 2   # workers.reconcile.ROUNDS_PER_LEASE
TAKEOVER_SLACK_S = 4.0            # message delivery and the claim on two loaded cores
CUT_AT_LEAST_S = 6.0              # the cut-off worker finishes an epoch and blocks writing it
HANG_GUARD_S = 90.0
CUT_SETTLE_S = 0.3
CUT_TRIES = 3  # an epoch write lasts milliseconds: a cut can land just after it ends
TAKEOVER_GUARD_S = 30.0  # several times the bound asserted: the lease, a round, the slack
POLL_S = 0.05
PRIVATE_REDIS_PORTS = range(6391, 6400)
WORKER_ENV = {"NNQ_CHECKPOINT_SECONDS": "0", "NNQ_EPOCH_WRITE_SECONDS": "0",
              "NNQ_REQUEUE_AFTER_SECONDS": "6",
              "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# About half a second an epoch in a worker: long enough to cut mid-job, short in all.
SPEC = {"name": "partitioned",
        "data": {"dataset": "synthetic", "samples": 2000, "seed": 2},
        "model": {"preset": "mlp", "hidden": [256, 256], "batchnorm": True, "dropout": 0.1},
        "train": {"epochs": 12, "batch_size": 4, "optimizer": {"type": "adam", "lr": 0.001},
                  "seed": 2}}

AUDIT = """
CREATE TABLE chaos_audit (id serial PRIMARY KEY, tbl text, app text, job_id int,
                          at timestamp DEFAULT (clock_timestamp() AT TIME ZONE 'UTC'));
CREATE FUNCTION chaos_audit_row() RETURNS trigger AS $$
BEGIN
  INSERT INTO chaos_audit (tbl, app, job_id)
  VALUES (TG_TABLE_NAME, current_setting('application_name'), NEW.job_id);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE FUNCTION chaos_audit_job() RETURNS trigger AS $$
BEGIN
  INSERT INTO chaos_audit (tbl, app, job_id)
  VALUES (TG_TABLE_NAME, current_setting('application_name'), NEW.id);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
""" + "".join(
    f"CREATE TRIGGER chaos_audit AFTER INSERT OR UPDATE ON {table} "
    f"FOR EACH ROW EXECUTE FUNCTION chaos_audit_row();\n"
    for table in ("epoch_metrics", "checkpoints", "models", "iteration_losses",
                  "activation_stats", "job_attempts")
) + "CREATE TRIGGER chaos_audit AFTER UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION " \
    "chaos_audit_job();\n"


class BridgeCluster(PrivateCluster):
    """The private cluster, listening on the bridge's address, trusting the hosts' subnet, and
    logging each statement with the writer's application_name."""

    def __init__(self, root: Path, address: str, subnet: str):
        super().__init__(root)
        self.address, self.subnet = address, subnet
        self.url = f"postgresql+psycopg://postgres@{address}:{self.port}/postgres"
        self.log = root / "server.log"

    def init(self) -> None:
        super().init()
        with open(self.data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.subnet}.0/24 trust\n")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses={self.address} "
                   "-c log_statement=all -c log_parameter_max_length=0 "
                   "-c log_line_prefix='%m [%a] '")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")


@pytest.fixture
def network():
    reason = hosts.unavailable()
    if reason:
        pytest.skip(reason)
    net = hosts.HostNetwork(2)
    try:
        net.create()
        yield net
    finally:
        net.destroy()


@pytest.fixture
def cluster(network):
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        pytest.skip("PostgreSQL server programs (initdb, pg_ctl) not installed")
    root = Path(tempfile.mkdtemp(prefix="nnq-pg-hosts-"))
    shutil.chown(root, UNPRIVILEGED)
    pg = BridgeCluster(root, network.address, network.subnet)
    try:
        pg.init()
        pg.start()
        support.migrate(pg.url)
        with engine_for(pg.url).begin() as conn:
            conn.execute(text(AUDIT))
        yield pg
    finally:
        engine_for(pg.url).dispose()
        subprocess.run(["runuser", "-u", UNPRIVILEGED, "--", "pg_ctl", "-D", str(pg.data),
                        "-m", "immediate", "stop"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def broker(network):
    """A private redis-server on the bridge's address (no persistence); its URL."""
    port = next((p for p in PRIVATE_REDIS_PORTS if not port_in_use(network.address, p)), None)
    if port is None:
        pytest.skip(f"no free private Redis port in {PRIVATE_REDIS_PORTS}")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", network.address, "--save", "",
         "--appendonly", "no", "--protected-mode", "no"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://{network.address}:{port}/0"
    try:
        wait_until("the private redis-server", lambda: redis_reachable(url), timeout=30)
        yield url
    finally:
        stop_process(proc)


def _reference_shas(spec: dict) -> dict[str, str]:
    with threadpool_limits(1):
        run = nncore.TrainingRun.from_spec(spec)
        run.fit()
    roles = run.network.tensor_roles()
    return {name: encode_tensor(name, array, roles[name]).sha256
            for name, array in run.network.state_dict().items()}


def _busy(admin: psycopg.Connection, app: str) -> bool:
    """Whether any of ``app``'s connections is inside a statement or transaction (a cut then
    would leave its row locks held until the link came back)."""
    return bool(admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state <> 'idle'",
        (app,)).fetchone()[0])


def _in_epoch_write(admin: psycopg.Connection, app: str) -> bool:
    """Whether ``app`` is inside an epoch write's transaction, past its ``UPDATE jobs``: the
    job's row is locked until that transaction ends."""
    return bool(admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
        "AND state LIKE 'idle in transaction%%' AND (query LIKE 'UPDATE jobs SET epoch%%' "
        "OR query LIKE '%%epoch_metrics%%' OR query LIKE '%%iteration_losses%%' "
        "OR query LIKE '%%activation_stats%%')", (app,)).fetchone()[0])


# "inside-epoch-write" needs the server to end a session idle inside a transaction (one lease,
# service/db/engine.py): else the cut-off worker's row lock holds every reconciler back until
# TCP gives up, hours later.
@pytest.mark.parametrize("moment", ["between-transactions", "inside-epoch-write"])
def test_a_cut_off_host_loses_its_job_and_its_late_writes_are_refused(
        network, cluster, broker, tmp_path, moment):
    """``between-transactions``: the link goes down while the worker trains. ``inside-epoch-
    write``: it goes down in the middle of the worker's epoch write, with the job's row
    locked by the transaction the worker can no longer finish."""
    sessions = session_factory(cluster.url)
    workers = {
        host.name: hosts.HostWorker(
            host, {**WORKER_ENV, "NNQ_BROKER_URL": broker, "NNQ_LEASE_SECONDS": str(LEASE_S),
                   "NNQ_DATABASE_URL": f"{cluster.url}?application_name={host.name}"},
            tmp_path / f"{host.name}.log")
        for host in network.hosts}
    everyone = list(workers.values())
    admin = psycopg.connect(make_url(cluster.url).set(drivername="postgresql")
                            .render_as_string(hide_password=False), autocommit=True)
    try:
        for worker in everyone:
            worker.wait_ready()
        with sessions() as session:
            job_id = store.create_job(session, SPEC)[0].id
        enqueue(job_id, "cpu", broker_url=broker)

        def checkpoint_epoch() -> int:
            with sessions() as session:
                stored = store.latest_checkpoint(session, job_id)
            return stored.epoch if stored is not None else 0

        wait_until("a first checkpoint", lambda: checkpoint_epoch() >= 1, everyone,
                   timeout=HANG_GUARD_S, poll=POLL_S)
        with sessions() as session:  # whichever host took the job is cut off
            owner_host = store.get_job(session, job_id).lease_owner.partition(":")[0]
        victim_host, survivor_host = sorted(network.hosts, key=lambda h: h.name != owner_host)
        victim, survivor = workers[victim_host.name], workers[survivor_host.name]
        for _ in range(CUT_TRIES):
            if moment == "between-transactions":
                wait_until("the victim to be between transactions",
                           lambda: not _busy(admin, victim_host.name), everyone,
                           timeout=HANG_GUARD_S, poll=0.002)
            else:
                wait_until("the victim to be inside an epoch write",
                           lambda: _in_epoch_write(admin, victim_host.name), everyone,
                           timeout=HANG_GUARD_S, poll=0.001)
            cut_at = admin.execute("SELECT clock_timestamp() AT TIME ZONE 'UTC'").fetchone()[0]
            network.cut(victim_host)
            cut_started = time.monotonic()
            if moment != "inside-epoch-write" or _in_epoch_write(admin, victim_host.name):
                break
            # the write committed while the link was going down (a few ms on a slow host):
            # bring it back at once and cut inside the next epoch's write instead
            network.restore(victim_host)
        else:
            pytest.fail(f"the cut missed the epoch write {CUT_TRIES} times")
        time.sleep(CUT_SETTLE_S)  # what the victim sent before the cut has been processed
        victim_rows_at_cut = admin.execute(
            "SELECT count(*) FROM chaos_audit WHERE app = %s AND job_id = %s",
            (victim_host.name, job_id)).fetchone()[0]
        epoch_at_cut = checkpoint_epoch()

        def survivor_owns() -> bool:
            with sessions() as session:
                owner = store.get_job(session, job_id).lease_owner or ""
            return owner.startswith(f"{survivor_host.name}:")

        wait_until("the job to move to the other host", survivor_owns, [survivor],
                   timeout=TAKEOVER_GUARD_S, poll=POLL_S)
        takeover_s = time.monotonic() - cut_started
        wait_until("the survivor to store a newer checkpoint",
                   lambda: checkpoint_epoch() > epoch_at_cut, [survivor],
                   timeout=HANG_GUARD_S, poll=POLL_S)
        time.sleep(max(0.0, CUT_AT_LEAST_S - (time.monotonic() - cut_started)))
        log_offset = cluster.log.stat().st_size
        network.restore(victim_host)
        cut_s = time.monotonic() - cut_started

        wait_until("the job to succeed", lambda: store.get_job(sessions(), job_id).status
                   == "succeeded", everyone, timeout=HANG_GUARD_S, poll=POLL_S)
        wait_until("the victim to learn that its lease is gone",
                   lambda: "lease lost" in victim.log(), everyone, timeout=HANG_GUARD_S,
                   poll=POLL_S)
    finally:
        for worker in workers.values():
            worker.stop()
        admin.close()

    with cluster.log.open(errors="replace") as server_log:
        server_log.seek(log_offset)
        late = [line for line in server_log if f"[{victim_host.name}]" in line]
    late_updates = [line for line in late if "UPDATE jobs SET" in line]
    late_epoch_writes = [line for line in late_updates if "UPDATE jobs SET epoch" in line]

    with sessions() as session:
        job = store.get_job(session, job_id)
        models = session.scalars(select(Model).where(Model.job_id == job_id)).all()
        attempts = session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id)
                                   .order_by(JobAttempt.attempt)).all()
        epochs = session.scalars(select(EpochMetric.epoch).where(EpochMetric.job_id == job_id)
                                 .order_by(EpochMetric.epoch)).all()
        stored = {t.name: t.sha256 for t in session.scalars(
            select(ModelTensor).where(ModelTensor.model_id == job.model_id))}
        audit = session.execute(text(
            "SELECT tbl, app, at FROM chaos_audit WHERE job_id = :job ORDER BY id"),
            {"job": job_id}).all()

    victim_rows = [(tbl, at) for tbl, app, at in audit if app == victim_host.name]
    landed_after_cut = len(victim_rows) - victim_rows_at_cut  # committed after the cut
    survivor_rows = {tbl for tbl, app, _ in audit if app == survivor_host.name}
    print(f"\n[chaos/hosts {moment}] link cut for {cut_s:.1f} s at epoch {epoch_at_cut}; the job moved "
          f"to the other host after {takeover_s:.1f} s (lease {LEASE_S} s, reconciler round "
          f"{RECONCILE_ROUND_S:g} s); statements from the cut-off host after the link came "
          f"back: {len(late)} ({len(late_updates)} UPDATE jobs, {len(late_epoch_writes)} of them "
          f"an epoch write with its checkpoint), rows of its that landed "
          f"after the cut: {landed_after_cut}; attempts "
          f"{[(a.host, a.resumed_from_epoch, a.outcome) for a in attempts]}")

    assert job.status == "succeeded", job.error
    assert len(models) == 1 and job.model_id == models[0].id
    assert epochs == list(range(1, SPEC["train"]["epochs"] + 1))
    assert attempts[-1].host == survivor_host.name and attempts[-1].outcome == "succeeded"
    assert attempts[-1].resumed_from_epoch >= 1
    assert all(a.outcome == "lost" for a in attempts if a.host == victim_host.name)
    assert takeover_s <= LEASE_S + RECONCILE_ROUND_S + TAKEOVER_SLACK_S
    assert late_epoch_writes, "the cut-off worker sent no epoch write once its link was back"
    assert landed_after_cut == 0, victim_rows
    assert {"epoch_metrics", "checkpoints", "models", "jobs"} <= survivor_rows
    assert all(at < cut_at for _, at in victim_rows)  # statements run before the cut only
    assert stored == _reference_shas(SPEC), "resumed on another host, the tensors differ"
