"""Workers scale: the same 16-trial sweep on 1 worker and on 2, in alternating rounds.

Starts a private ``redis-server`` and a scratch PostgreSQL database (``--sqlite`` for a SQLite
file), then per round submits the sweep through the API's app and times it from the POST to
the sweep's end, with 1 worker process and then 2 (``celery -A workers worker --concurrency
1`` each, one BLAS thread each, as nnq's workers run), swapping the order every round so that
load from other processes hits both alike. The base is ``examples/sweep-fashion-small.json``
(an MLP on 10,000 Fashion-MNIST images, 2 epochs; synthetic data without the files). Each
worker first runs a one-epoch job of that base, as a worker that has served jobs before
has read the dataset files (~1 s, once per process); the timing starts after that.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/sweep_scaling.py \
        [--rounds 3] [--trials 16] [--parallelism 4] [--sqlite]

Target: 2 workers finish in at most 0.55x the wall time of 1 worker. Also printed: the
trials' own time (claim to end, summed) over the wall time, i.e. how busy the workers were,
and the CPU seconds the worker processes used: the same CPU in both cases means the work
divided well, and a ratio above 0.5 then comes from cores the machine did not have free.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from stack import (
    ROOT,
    ScratchPostgres,
    bench_env,
    celery_worker,
    group_cpu_seconds,
    load_average,
    sqlite_database,
)

import nncore
from nnq.processes import start_redis, stop_process
from nnq.status import SweepStatus

BASE_SWEEP = ROOT / "examples" / "sweep-fashion-small.json"
TARGET_RATIO = 0.55
POLL_S = 0.02
SWEEP_TIMEOUT_S = 900.0


def sweep_request(trials: int, parallelism: int, round_: int) -> dict:
    request = json.loads(BASE_SWEEP.read_text())
    try:
        nncore.load_dataset("fashion-mnist", train_limit=10)
    except nncore.DataError:
        request["base"]["data"] = {"dataset": "synthetic", "samples": 12000}
    return {**request, "name": f"scaling-{round_}", "max_trials": trials,
            "parallelism": parallelism}


def run_sweep(client, sessions, request: dict) -> tuple[float, float]:
    """(wall seconds from POST to the sweep's end, the trials' summed claim-to-end seconds)."""
    from sqlalchemy import select

    from service.db import Job, Sweep

    start = time.monotonic()
    response = client.post("/api/v1/sweeps", json=request)
    assert response.status_code == 202, response.get_data(as_text=True)
    sweep_id = response.get_json()["id"]
    deadline = start + SWEEP_TIMEOUT_S
    while True:
        with sessions() as session:
            sweep = session.get(Sweep, sweep_id, populate_existing=True)
            if sweep.status in SweepStatus.FINISHED:
                wall = time.monotonic() - start
                jobs = list(session.scalars(select(Job).where(Job.sweep_id == sweep_id)))
                break
        if time.monotonic() > deadline:
            raise TimeoutError(f"sweep {sweep_id} still {sweep.status}")
        time.sleep(POLL_S)
    assert sweep.status == SweepStatus.SUCCEEDED, (sweep.status, sweep.error)
    busy = sum((j.finished_at - j.started_at).total_seconds() for j in jobs)
    return wall, busy


def warm_up(client, sessions, workers: int, base: dict) -> None:
    """One one-epoch job of the sweep's base per worker, all at once (each worker takes one:
    prefetch 1), so that every worker process has read the dataset files once, as workers
    that have run for a while have."""
    from service.db import jobs as store

    spec = {**base, "train": {**base["train"], "epochs": 1}}
    ids = []
    for _ in range(workers):
        response = client.post("/api/v1/jobs", json=spec)
        assert response.status_code == 202, response.get_data(as_text=True)
        ids.append(response.get_json()["id"])
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    for job_id in ids:
        while True:
            with sessions() as session:
                if store.get_job(session, job_id).is_terminal:
                    break
            assert time.monotonic() < deadline, f"warm-up job {job_id} did not end"
            time.sleep(POLL_S)


def one_round(url, redis_url, workdir, workers: int, request: dict
              ) -> tuple[float, float, float]:
    from service import create_app
    from service.db import session_factory

    env = bench_env(NNQ_DATABASE_URL=url, NNQ_BROKER_URL=redis_url)
    with ExitStack() as stack:
        started = []
        for i in range(workers):
            worker = celery_worker(f"scaling-{workers}-{i}", workdir / f"w{workers}-{i}.log", env)
            stack.callback(worker.stop)
            started.append(worker)
        client = create_app({"NNQ_DATABASE_URL": url, "NNQ_BROKER_URL": redis_url}).test_client()
        sessions = session_factory(url)
        warm_up(client, sessions, workers, request["base"])
        cpu = sum(group_cpu_seconds(w) for w in started)
        wall, busy = run_sweep(client, sessions, request)
        return wall, busy, sum(group_cpu_seconds(w) for w in started) - cpu


def run(url: str, redis_url: str, args, workdir: Path) -> None:
    print(f"{args.trials} trials, parallelism {args.parallelism}, "
          f"{'sqlite' if url.startswith('sqlite') else 'postgresql'}; {load_average()}",
          flush=True)
    walls: dict[int, list[float]] = {1: [], 2: []}
    ratios = []
    for round_ in range(args.rounds):
        order = (1, 2) if round_ % 2 == 0 else (2, 1)
        got = {}
        for workers in order:
            request = sweep_request(args.trials, args.parallelism, round_ * 2 + workers)
            wall, busy, cpu = one_round(url, redis_url, workdir, workers, request)
            walls[workers].append(wall)
            got[workers] = wall
            print(f"  round {round_ + 1}: {workers} worker(s) {wall:6.2f} s, trials busy "
                  f"{busy:6.2f} s ({busy / wall / workers:.0%} of the workers' time), "
                  f"workers' CPU {cpu:6.2f} s; {load_average()}", flush=True)
        ratios.append(got[2] / got[1])
    print(f"\n1 worker: median {statistics.median(walls[1]):.2f} s; 2 workers: median "
          f"{statistics.median(walls[2]):.2f} s")
    print(f"2 workers / 1 worker: median {statistics.median(ratios):.3f} (per round "
          f"{', '.join(f'{r:.3f}' for r in ratios)}; target <= {TARGET_RATIO})")
    print(f"after: {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis, redis_url = start_redis(workdir, stdout=subprocess.DEVNULL)
        try:
            if args.sqlite:
                run(sqlite_database(workdir), f"{redis_url}/0", args, workdir)
            else:
                with ScratchPostgres() as url:
                    run(url, f"{redis_url}/0", args, workdir)
        finally:
            stop_process(redis)


if __name__ == "__main__":
    main()
