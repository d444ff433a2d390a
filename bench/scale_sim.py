"""A fleet's database writes, replayed from many threads against a scratch PostgreSQL.

Each thread is one worker that runs job after job of a reference workload (measured on
Fashion-MNIST with one BLAS thread, batch 100) and makes the writes a real worker makes, through
the real store functions: the API's insert of the job, the claim, the heartbeats and epoch
writes of ``workers.tracker.JobTracker`` (``--pattern current``), the final model; or the
writes nnq made before its write budget (``--pattern old``: progress every 0.5 s, a cancel
poll every 0.3 s, the lease every lease/3, every epoch with a checkpoint). ``--speedup K``
runs every clock K times faster, so N threads offer the load of N*K workers; the threads are
spread over ``--processes`` processes so that one interpreter lock does not bound them. Each
worker's first job starts at a random point of its timeline, so the window is steady state.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/scale_sim.py \
        [--workers 200] [--speedup 5] [--seconds 60] [--pattern current|old]
        [--workload convnet|mlp] [--pool 40] [--processes 4]

Prints, per kind of write: transactions/s offered (from the pattern) and achieved, p50/p99
latency (including the wait for one of ``--pool`` connections, as behind a pooler), the
checkpoint and model MB/s, what PostgreSQL counted (commits, rows, WAL bytes) and the CPU
its processes used. The simulated clients' own CPU is that of 1,000 hosts squeezed onto this
one: when the offered rate is not achieved, compare the backends' CPU with the machine's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import itertools
import multiprocessing
import os
import random
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from stack import ScratchPostgres, load_average

import nncore
from nncore.training import EpochRecord, loss_stride
from service.db import jobs as store
from service.db.engine import ping
from service.db.scope import in_scope, transaction
from service.settings import settings
from workers import tracker as tracker_module
from workers.reconcile import ROUNDS_PER_LEASE, reconcile_once
from workers.tracker import JobTracker

SPEC = {"name": "scale-sim"}
LEASE_SECONDS = 60.0
OLD_PROGRESS_S, OLD_CANCEL_POLL_S, OLD_RENEWALS_PER_LEASE = 0.5, 0.3, 3
HISTOGRAM_BINS = 30
STARTUP_S = 0.1  # claim -> first iteration (bench/latency.py)
MB = 1e6
READS = frozenset({"cancel poll", "reconciler", "reconciler ping"})
SERIAL_BYTES = 8
SPAWN_S = 3.0  # for the processes to start their threads before the warm-up begins
PG_BACKGROUND = ("walwriter", "checkpointer", "background writer")


@dataclasses.dataclass(frozen=True)
class Workload:
    """A reference job: measured epoch time and sizes (bench/README.md, "1,000 workers")."""

    model: dict
    epochs: int
    epoch_s: float
    checkpoint_bytes: int
    iterations_per_epoch: int = 540  # 54,000 training images, batch 100

    @property
    def job_s(self) -> float:
        return STARTUP_S + self.epochs * self.epoch_s


WORKLOADS = {
    "mlp": Workload({"preset": "mlp", "hidden": [100, 100, 100], "batchnorm": True},
                    epochs=20, epoch_s=0.7, checkpoint_bytes=1_224_266),
    "convnet": Workload({"preset": "simple_convnet"}, epochs=10, epoch_s=7.8,
                        checkpoint_bytes=5_217_130),
}


class Recorder:
    """Latency and count of every timed call, by kind, inside the measured window."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.bytes: dict[str, int] = defaultdict(int)
        self.window = (float("inf"), float("inf"))

    def add(self, kind: str, started: float, seconds: float, nbytes: int = 0) -> None:
        if self.window[0] <= started < self.window[1]:
            with self.lock:
                self.latencies[kind].append(seconds)
                self.bytes[kind] += nbytes

    def timed(self, kind: str, fn, nbytes=lambda *a, **k: 0):
        def call(*args, **kwargs):
            start = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(kind, start, time.monotonic() - start, nbytes(*args, **kwargs))
        return call


@functools.cache
def random_bytes(size: int) -> bytes:
    """Incompressible bytes (trained weights barely compress; zeros would, in TOAST)."""
    return np.random.default_rng(0).bytes(size)


def checkpoint_bytes(size: int, serial: int) -> bytes:
    """A checkpoint that differs from the previous one, as a trained network's does (the
    store writes nothing for bytes equal to those it holds)."""
    stamp = serial.to_bytes(SERIAL_BYTES, "little")
    return stamp + random_bytes(size)[SERIAL_BYTES:]


def epoch_record(workload: Workload, epoch: int, layers: int) -> EpochRecord:
    stride = loss_stride(workload.epochs * workload.iterations_per_epoch)
    first = (epoch - 1) * workload.iterations_per_epoch
    losses = tuple((i, 1.0) for i in range(first + stride, first + workload.iterations_per_epoch
                                           + 1, stride))
    stat = {"mean": 0.1, "std": 1.0, "edges": [i / HISTOGRAM_BINS for i in range(
        HISTOGRAM_BINS + 1)], "counts": [1] * HISTOGRAM_BINS}
    return EpochRecord(epoch=epoch, losses=losses, probe_size=256, activations=tuple(
        {"layer": i, "name": f"{i} layer", "type": "relu", **stat} for i in range(layers)))


def row(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 0.5, "train_acc": 0.8, "val_acc": 0.8,
            "test_acc": 0.8, "seconds": 1.0}


class SimulatedWorker(threading.Thread):
    def __init__(self, index, sessions, workload, network, pattern, speedup, stop, rec):
        super().__init__(daemon=True, name=f"sim-{index}")
        self.index, self.sessions, self.workload, self.network = index, sessions, workload, \
            network
        self.pattern, self.speedup, self.stop, self.rec = pattern, speedup, stop, rec
        self.owner = f"sim:{index}"
        self.checkpoints = itertools.count()
        self.layers = network.hidden_layers()

    def checkpoint(self) -> bytes:
        return checkpoint_bytes(self.workload.checkpoint_bytes, next(self.checkpoints))

    def sleep_until(self, deadline: float) -> bool:
        """False when the run is over."""
        return not self.stop.wait(max(0.0, deadline - time.monotonic()))

    def run(self) -> None:
        phase = random.Random(self.index).uniform(0, self.workload.job_s)
        first = True
        while not self.stop.is_set():
            with self.sessions() as session:
                job, _ = store.create_job(session, SPEC, name="scale-sim")
                store.claim_job(session, job.id, self.owner, LEASE_SECONDS / self.speedup)
            skip = phase if first else 0.0
            first = False
            start = time.monotonic() - skip / self.speedup
            job_run = self.current_job if self.pattern == "current" else self.old_job
            try:
                finished, last_epochs = job_run(job.id, start, skip)
            except store.LeaseLost:  # the simulation fell behind its own leases
                self.rec.add("lease lost", time.monotonic(), 0.0)
                continue
            if finished:  # the last epochs' rows go with the model, as workers/train.py does
                with (self.sessions() as session, contextlib.suppress(store.LeaseLost),
                      transaction(session)):
                    last_epochs(session)
                    store.finish_job(session, job.id, self.owner, self.network, {}, None)

    def epoch_ends(self, start: float, skip: float):
        """(epoch, its end time) of the epochs still ahead of a job started ``skip`` s in."""
        w, s = self.workload, self.speedup
        for epoch in range(1, w.epochs + 1):
            end = STARTUP_S + epoch * w.epoch_s
            if end > skip:
                yield epoch, start + end / s

    def progress(self, epoch: int) -> dict:
        total = self.workload.epochs * self.workload.iterations_per_epoch
        return {"epoch": epoch, "iteration": epoch * self.workload.iterations_per_epoch,
                "total_iterations": total}

    def current_job(self, job_id: int, start: float, skip: float) -> tuple[bool, Callable]:
        config, s = settings(), self.speedup
        tracker = JobTracker(self.sessions, job_id, self.owner, LEASE_SECONDS / s,
                             self.checkpoint,
                             heartbeat_seconds=config.heartbeat_seconds / s,
                             epoch_write_seconds=config.epoch_write_seconds / s,
                             checkpoint_seconds=config.checkpoint_seconds / s)
        with tracker:
            if not self.sleep_until(start + STARTUP_S / s):
                return False, None
            tracker.on_iteration(self.progress(0) | {"iteration": 1})
            for epoch, end in self.epoch_ends(start, skip):
                if not self.sleep_until(end):
                    return False, None
                tracker.on_iteration(self.progress(epoch))
                tracker.on_epoch(row(epoch), epoch_record(self.workload, epoch, self.layers))
            pending = tracker.hand_over_pending()
        return True, lambda session: tracker.write_pending(session, pending)

    def old_job(self, job_id: int, start: float, skip: float) -> bool:
        """The write pattern before the budget: a tick per progress, cancel poll and lease
        renewal, and every epoch with its checkpoint."""
        s, rec = self.speedup, self.rec
        intervals = {"progress": OLD_PROGRESS_S / s, "cancel poll": OLD_CANCEL_POLL_S / s,
                     "heartbeat": LEASE_SECONDS / OLD_RENEWALS_PER_LEASE / s}
        due = {kind: start + STARTUP_S / s for kind in intervals}
        calls = {
            "progress": lambda session, epoch: rec.timed("progress", store.record_progress)(
                session, job_id, self.owner, epoch, 1, 1),
            "cancel poll": lambda session, _epoch: rec.timed(
                "cancel poll", store.cancel_requested)(session, job_id),
            "heartbeat": lambda session, _epoch: rec.timed("heartbeat", store.renew_lease)(
                session, job_id, self.owner, LEASE_SECONDS / s),
        }
        record_epoch = rec.timed("epoch", store.record_epoch, lambda *a, **k: len(a[4]))
        with self.sessions() as session:
            for epoch, end in self.epoch_ends(start, skip):
                while True:
                    kind = min(due, key=due.get)
                    if due[kind] >= end:
                        break
                    if not self.sleep_until(due[kind]):
                        return False, None
                    calls[kind](session, epoch)
                    due[kind] += intervals[kind]
                if not self.sleep_until(end):
                    return False, None
                record_epoch(session, job_id, self.owner, row(epoch), self.checkpoint(),
                             record=epoch_record(self.workload, epoch, self.layers))
        return True, no_rows


class Reconcilers(threading.Thread):
    """The fleet's reconciler loops (``workers.reconcile``), each ticking once per half lease,
    driven at the fleet's aggregate rate, evenly spread: ``--pattern old`` every tick is a
    round (``reconcile_once``); now one tick per period is (the fleet's, claimed on the
    broker) and every other tick pings the database."""

    def __init__(self, sessions, fleet: float, pattern: str, stop, rec):
        super().__init__(daemon=True, name="sim-reconcilers")
        self.sessions, self.stop, self.rec = sessions, stop, rec
        self.interval = LEASE_SECONDS / ROUNDS_PER_LEASE / fleet
        self.ticks_per_round = 1 if pattern == "old" else max(1, round(fleet))

    def run(self) -> None:
        round_ = self.rec.timed("reconciler", reconcile_once)
        ping_ = self.rec.timed("reconciler ping", ping)
        due = time.monotonic()
        for tick in itertools.count():
            if self.stop.wait(max(0.0, due - time.monotonic())):
                return
            if tick % self.ticks_per_round == 0:
                round_(self.sessions)
            else:
                with self.sessions() as session:
                    ping_(session)
            due += self.interval


def instrument(rec: Recorder, workload: Workload) -> None:
    """Time the store calls the worker code makes (the tracker looks them up on ``store``)."""
    store.create_job = rec.timed("submit (API)", store.create_job)
    store.claim_job = rec.timed("claim", store.claim_job)
    store.heartbeat = rec.timed("heartbeat", store.heartbeat)
    store.finish_job = rec.timed("final model", store.finish_job, lambda *a, **k: sum(
        np.asarray(v).nbytes for v in a[3].state_dict().values()))
    write_epochs = tracker_module.JobTracker.write_epochs

    def timed_write(self, *, with_checkpoint, session=None):
        if not self._pending:
            return None
        if session is not None and in_scope(session):  # part of the final model's write
            return write_epochs(self, with_checkpoint=with_checkpoint, session=session)
        nbytes = workload.checkpoint_bytes if with_checkpoint else 0
        return rec.timed("epoch", write_epochs, lambda *a, **k: nbytes)(
            self, with_checkpoint=with_checkpoint, session=session)
    tracker_module.JobTracker.write_epochs = timed_write


def no_rows(_session) -> None:
    """The old pattern wrote every epoch at once: nothing goes with the model."""


def job_timeline(workload: Workload) -> tuple[int, int]:
    """(epoch writes, checkpoints) of one job under the settings, as JobTracker decides them:
    the first epoch at once, then every ``epoch_write_seconds``, the rest with the final
    model (not a write of its own); a checkpoint with a write once ``checkpoint_seconds``
    passed since the last (or the start)."""
    config = settings()
    writes = checkpoints = 0
    last_write = -np.inf
    last_checkpoint = 0.0 if config.checkpoint_seconds else -np.inf
    for epoch in range(1, workload.epochs + 1):
        now = STARTUP_S + epoch * workload.epoch_s
        if now - last_write >= config.epoch_write_seconds:
            writes, last_write = writes + 1, now
            if now - last_checkpoint >= config.checkpoint_seconds:
                checkpoints, last_checkpoint = checkpoints + 1, now
    return writes, checkpoints  # the pending rest goes with the final model


def offered(pattern: str, workload: Workload, workers: float) -> dict[str, float]:
    """Transactions per second the pattern asks for, steady state, for ``workers`` workers;
    ``checkpoint MB/s`` is what the checkpoints among them weigh."""
    w, config = workload, settings()
    jobs = workers / w.job_s
    if pattern == "old":
        running = workers * w.epochs * w.epoch_s / w.job_s
        return {"submit (API)": jobs, "claim": jobs, "progress": running / OLD_PROGRESS_S,
                "cancel poll": running / OLD_CANCEL_POLL_S,
                "heartbeat": workers * OLD_RENEWALS_PER_LEASE / LEASE_SECONDS,
                "epoch": jobs * w.epochs, "final model": jobs,
                "reconciler": workers * ROUNDS_PER_LEASE / LEASE_SECONDS,
                "checkpoint MB/s": jobs * w.epochs * w.checkpoint_bytes / MB}
    heartbeat = min(config.heartbeat_seconds, LEASE_SECONDS / tracker_module.RENEWALS_PER_LEASE)
    writes, checkpoints = job_timeline(w)
    return {"submit (API)": jobs, "claim": jobs,
            "heartbeat": jobs * (1 + int(w.job_s / heartbeat)), "epoch": jobs * writes,
            "final model": jobs,
            "reconciler": ROUNDS_PER_LEASE / LEASE_SECONDS,
            "reconciler ping": (workers - 1) * ROUNDS_PER_LEASE / LEASE_SECONDS,
            "checkpoint MB/s": jobs * checkpoints * w.checkpoint_bytes / MB}


def pg_counters(url: str) -> dict[str, float]:
    from sqlalchemy import text

    from service.db import engine_for

    with engine_for(url).connect() as conn:
        stats = conn.execute(text(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database"
            " WHERE datname = current_database()")).one()
        wal = conn.execute(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")).scalar()
    return {"commits": stats[0], "rows written": stats[1] + stats[2] + stats[3],
            "WAL MB": float(wal) / MB}


def report(rec: Recorder, expected: dict[str, float], seconds: float, speedup: float,
           counters: dict[str, float]) -> None:
    print(f"\n{'write':<14} {'offered/s':>10} {'achieved/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'MB/s':>7}")
    total_offered = total = 0.0
    checkpoint_mb = expected.pop("checkpoint MB/s", 0.0)
    for kind in sorted(set(expected) | set(rec.latencies)):
        lat = np.asarray(rec.latencies.get(kind, [np.nan])) * 1e3
        rate = len(rec.latencies.get(kind, [])) / seconds
        write = kind not in READS
        total_offered += expected.get(kind, 0) * write
        total += rate * write
        p50, p99 = (np.percentile(lat, [50, 99]) if len(lat) else (np.nan, np.nan))
        print(f"{kind:<14} {expected.get(kind, 0):10.1f} {rate:10.1f} {p50:8.2f} {p99:8.2f} "
              f"{rec.bytes.get(kind, 0) / MB / seconds:7.2f}")
    print(f"{'writes':<14} {total_offered:10.1f} {total:10.1f}   (write transactions: "
          f"{' and '.join(sorted(READS))} only read without sweeps)")
    print(f"checkpoints: {checkpoint_mb:.1f} MB/s offered, "
          f"{rec.bytes.get('epoch', 0) / MB / seconds:.1f} MB/s written")
    print("PostgreSQL over the window: " + ", ".join(
        f"{k} {v / seconds:,.2f}/s" for k, v in counters.items()) + "  (WAL and the "
        "background processes are the whole server's, other databases' included)")
    print(f"(clocks {speedup:g}x faster: the figures are those of {speedup:g}x the threads)")


def pg_cpu_seconds(database: str) -> tuple[float, float]:
    """CPU seconds so far of (this database's backends, the server's background processes:
    WAL writer, checkpointer, background writer; shared with other databases)."""
    ticks = os.sysconf("SC_CLK_TCK")
    backends = background = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if not cmdline.startswith("postgres:"):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        if f" {database} " in cmdline:
            backends += cpu
        elif any(name in cmdline for name in PG_BACKGROUND):
            background += cpu
    return backends, background


def simulate(url: str, args, indices: range, window: tuple[float, float], reconcile: bool,
             results) -> None:
    """One process's share of the simulated workers (threads), until the window ends; puts
    its Recorder's figures on ``results``."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    workload = WORKLOADS[args.workload]
    network = nncore.build(workload.model, (1, 28, 28) if "conv" in str(workload.model)
                           else (784,), 10, seed=0)
    rec = Recorder()
    rec.window = window
    instrument(rec, workload)
    engine = create_engine(url, pool_size=max(1, args.pool // args.processes), max_overflow=0,
                           pool_timeout=600)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    stop = threading.Event()
    threads = [SimulatedWorker(i, sessions, workload, network, args.pattern, args.speedup,
                               stop, rec) for i in indices]
    if reconcile:
        threads.append(Reconcilers(sessions, args.workers * args.speedup, args.pattern, stop,
                                   rec))
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, window[1] - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    results.put((dict(rec.latencies), dict(rec.bytes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--speedup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pattern", choices=("current", "old"), default="current")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="convnet")
    parser.add_argument("--pool", type=int, default=40,
                        help="database connections shared by all threads (a pooler's size)")
    parser.add_argument("--processes", type=int, default=4,
                        help="processes the threads are spread over (one interpreter lock each)")
    args = parser.parse_args()
    workload = WORKLOADS[args.workload]
    fleet = args.workers * args.speedup
    config = settings()
    print(f"{args.workers} threads in {args.processes} processes x speedup {args.speedup:g} = "
          f"{fleet:,.0f} workers, pattern {args.pattern}, workload {args.workload} "
          f"({workload.epochs} epochs of {workload.epoch_s} s, checkpoint "
          f"{workload.checkpoint_bytes / MB:.2f} MB), heartbeat {config.heartbeat_seconds:g} s, "
          f"epoch writes every {config.epoch_write_seconds:g} s, checkpoints every "
          f"{config.checkpoint_seconds:g} s; {load_average()}", flush=True)
    context = multiprocessing.get_context("fork")
    with ScratchPostgres() as url:
        database = url.rsplit("/", 1)[1]
        start = time.monotonic() + SPAWN_S + workload.job_s / args.speedup
        window = (start, start + args.seconds)
        results = context.Queue()
        shares = np.array_split(np.arange(args.workers), args.processes)
        processes = [context.Process(target=simulate, args=(
            url, args, range(share[0], share[-1] + 1), window, i == 0, results))
            for i, share in enumerate(shares) if len(share)]
        for process in processes:
            process.start()
        time.sleep(max(0.0, start - time.monotonic()))
        before, cpu_before = pg_counters(url), pg_cpu_seconds(database)
        time.sleep(max(0.0, window[1] - time.monotonic()))
        after, cpu_after = pg_counters(url), pg_cpu_seconds(database)
        rec = Recorder()
        for _ in processes:
            latencies, nbytes = results.get()
            for kind, values in latencies.items():
                rec.latencies[kind].extend(values)
            for kind, value in nbytes.items():
                rec.bytes[kind] += value
        for process in processes:
            process.join()
        counters = {k: after[k] - before[k] for k in after}
        counters["backend CPU s"] = cpu_after[0] - cpu_before[0]
        counters["server background CPU s"] = cpu_after[1] - cpu_before[1]
        report(rec, offered(args.pattern, workload, fleet), args.seconds, args.speedup, counters)
    print(f"after: {load_average()}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
