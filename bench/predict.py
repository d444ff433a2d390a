"""Stored-model inference against the framework's limit, in one run.

Stores a 784-100-100-10 BatchNorm MLP through the job store in a scratch SQLite database,
starts nnq's API under gunicorn (2 sync workers, ``NNQ_API_TOKEN`` set, so auth runs) and a
minimal Flask + NumPy app that serves the same weights from memory
(``bench/predict_minimal.py``), and drives both with the same load generator — ``wrk`` when
it is installed (``apt-get install wrk``), else a Python one — in alternating rounds, so
load from other processes hits both alike. Inputs are Fashion-MNIST test images (synthetic
ones without the files).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/predict.py \
        [--rounds 5] [--seconds 3] [--connections 2] [--ref id|alias]

Targets: nnq's 1-sample JSON at least 0.95x the minimal app's requests/s with p99 at most
2 ms; a 100-sample ``.npy`` body at least 6x the samples/s of the same batch as JSON; a
100-sample JSON request not slower than the minimal app's.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stack import (
    ROOT,
    Child,
    bench_env,
    group_cpu_seconds,
    load_average,
    sqlite_database,
)

import nncore
from nnq.processes import LOCALHOST, free_port, port_in_use

HIDDEN = [100, 100]
TOKEN = "bench-token"
ALIAS = "bench"
GUNICORN_WORKERS = 2
BATCH = 100
TRAIN_STEPS = 20
WARMUP_S = 1.0
TARGET_SINGLE_RATIO = 0.95
TARGET_P99_MS = 2.0
TARGET_NPY_SPEEDUP = 6.0
JSON, NPY = "application/json", "application/octet-stream"
WRK_SCRIPT = """
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = args[2]
  if args[3] ~= nil and args[3] ~= "" then wrk.headers["Authorization"] = "Bearer " .. args[3] end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


@dataclass
class Round:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_s: float = 0.0

    @property
    def cpu_us(self) -> float:
        """Server CPU time per request (all gunicorn processes): what load cannot distort."""
        return self.server_cpu_s / self.requests * 1e6

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass
class Target:
    """One server endpoint and one request body."""

    name: str
    server: Child
    path: str
    body: bytes
    content_type: str
    token: str = ""

    @property
    def port(self) -> int:
        return self.server.port


def measured(load, target: Target, seconds: float) -> Round:
    before = group_cpu_seconds(target.server)
    result = load.run(target, seconds)
    result.server_cpu_s = group_cpu_seconds(target.server) - before
    return result


def stored_model(url: str, dataset) -> tuple[int, nncore.Network]:
    """Train the MLP a few steps (so BatchNorm has running statistics) and store it the way a
    worker does; the alias points at it too."""
    from service.db import session_factory
    from service.db.jobs import claim_job, create_job, finish_job
    from service.db.model_store import set_alias

    net = nncore.build({"preset": "mlp", "hidden": HIDDEN, "batchnorm": True},
                       dataset.input_shape, dataset.num_classes, seed=0)
    optimizer = nncore.make_optimizer({"type": "adam", "lr": 0.001})
    for step in range(TRAIN_STEPS):
        batch = slice(step * BATCH, (step + 1) * BATCH)
        optimizer.update(net.params, net.gradient(dataset.x_train[batch],
                                                  dataset.t_train[batch]))
    with session_factory(url)() as session:
        job, _ = create_job(session, {"name": "bench-predict"}, name="bench-predict")
        claim_job(session, job.id, "bench", 60)
        model = finish_job(session, job.id, "bench", net, {}, dataset.fingerprint)
        set_alias(session, ALIAS, model.id)
        return model.id, net


def load_images():
    try:
        return nncore.load_dataset("fashion-mnist", val_fraction=0.0), "Fashion-MNIST"
    except nncore.DataError:
        return nncore.load_dataset("synthetic", samples=1000), "synthetic"


def npy_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    return buf.getvalue()


def start_gunicorn(app: str, log: Path, env: dict, *extra: str) -> Child:
    """gunicorn with sync workers on a free port (``child.port``), once it accepts."""
    port = free_port()
    child = Child([str(Path(sys.executable).parent / "gunicorn"), "--workers",
                   str(GUNICORN_WORKERS), "--bind", f"{LOCALHOST}:{port}", *extra, app],
                  log, env)
    child.port = port
    child.wait_for(f"gunicorn {app} on port {port}", lambda: port_in_use(LOCALHOST, port))
    return child


def post(target: Target) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(LOCALHOST, target.port, timeout=30)
    headers = {"Content-Type": target.content_type}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    conn.request("POST", target.path, target.body, headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data)


class WrkLoad:
    """``wrk`` with a Lua script that posts one body and prints a parseable summary."""

    name = "wrk"

    def __init__(self, workdir: Path, connections: int):
        self.workdir, self.connections = workdir, connections
        self.script = workdir / "post.lua"
        self.script.write_text(WRK_SCRIPT)

    def run(self, target: Target, seconds: float) -> Round:
        body = self.workdir / f"{target.name}.body"
        body.write_bytes(target.body)
        out = subprocess.run(
            ["wrk", "-t1", f"-c{self.connections}", f"-d{seconds:g}s", "-s", str(self.script),
             f"http://{LOCALHOST}:{target.port}{target.path}", "--", str(body),
             target.content_type, target.token], capture_output=True, text=True, check=True)
        match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
        if match is None:
            raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
        requests, micros, p50, p99, errors = map(int, match.groups())
        return Round(requests, micros / 1e6, p50 / 1e3, p99 / 1e3, errors)


class PythonLoad:
    """Threads posting back to back (gunicorn's sync workers close each connection)."""

    name = "python threads"

    def __init__(self, _workdir: Path, connections: int):
        self.connections = connections

    def run(self, target: Target, seconds: float) -> Round:
        latencies: list[float] = []
        errors = [0]
        deadline = time.perf_counter() + seconds

        def drive():
            mine = []
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                status, _ = post(target)
                mine.append(time.perf_counter() - start)
                errors[0] += status != 200
            latencies.extend(mine)

        start = time.perf_counter()
        threads = [threading.Thread(target=drive) for _ in range(self.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        ms = np.asarray(latencies) * 1e3
        return Round(len(latencies), elapsed, float(np.percentile(ms, 50)),
                     float(np.percentile(ms, 99)), errors[0])


def check_agreement(nnq: Target, minimal: Target, want_labels: list[int]) -> None:
    """Both servers answer 200 with the network's own labels before anything is timed."""
    for target in (nnq, minimal):
        status, body = post(target)
        if status != 200 or body.get("labels") != want_labels:
            raise RuntimeError(f"{target.name}: {status} {str(body)[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=GUNICORN_WORKERS)
    parser.add_argument("--ref", choices=("id", "alias"), default="id",
                        help="address the model by its id or by an alias")
    parser.add_argument("--python-load", action="store_true",
                        help="use the Python load generator even when wrk is installed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = sqlite_database(workdir)
        dataset, source = load_images()
        model_id, net = stored_model(url, dataset)
        state = workdir / "state.npz"
        state.write_bytes(nncore.state_to_bytes(net.state_dict()))
        env = bench_env(NNQ_DATABASE_URL=url, NNQ_API_TOKEN=TOKEN,
                        NNQ_BROKER_URL="redis://127.0.0.1:1/0", PREDICT_MINIMAL_STATE=str(state),
                        OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        nnq = start_gunicorn("service:create_app()", workdir / "nnq.log", env)
        minimal = start_gunicorn("predict_minimal:app", workdir / "min.log", env,
                                 "--chdir", str(ROOT / "bench"))
        try:
            run_rounds(args, workdir, dataset, source, model_id, net, nnq, minimal)
        finally:
            nnq.stop()
            minimal.stop()


def run_rounds(args, workdir, dataset, source, model_id, net, nnq: Child,
               minimal: Child) -> None:
    ref = str(model_id) if args.ref == "id" else ALIAS
    nnq_path = f"/api/v1/models/{ref}/predict"
    one = dataset.x_test[:1]
    batch = dataset.x_test[:BATCH]
    one_json = json.dumps({"inputs": one.tolist()}).encode()
    batch_json = json.dumps({"inputs": batch.tolist()}).encode()
    cases = {
        "1 sample JSON": (Target("nnq-1", nnq, nnq_path, one_json, JSON, TOKEN),
                          Target("min-1", minimal, "/predict", one_json, JSON)),
        f"{BATCH} samples JSON": (
            Target("nnq-100", nnq, nnq_path, batch_json, JSON, TOKEN),
            Target("min-100", minimal, "/predict", batch_json, JSON)),
        f"{BATCH} samples .npy": (
            Target("nnq-npy", nnq, nnq_path, npy_bytes(batch), NPY, TOKEN), None),
    }
    labels = {name: net.predict_proba(x).argmax(axis=1).tolist()
              for name, x in (("1 sample JSON", one), (f"{BATCH} samples JSON", batch))}
    for name, (nnq_target, minimal_target) in cases.items():
        if minimal_target is not None:
            check_agreement(nnq_target, minimal_target, labels[name])
    load = (WrkLoad if shutil.which("wrk") and not args.python_load else PythonLoad)(
        workdir, args.connections)
    for target in (t for pair in cases.values() for t in pair if t is not None):
        load.run(target, WARMUP_S)  # every gunicorn worker loads the model, compiles its SQL
    print(f"model {model_id} ({args.ref} in the path), {source} inputs, JSON bodies "
          f"{len(one_json)} and {len(batch_json)} bytes; load: {load.name}, "
          f"{args.connections} connections, {args.rounds} rounds of {args.seconds:g} s; "
          f"{load_average()}")
    results: dict[str, list[Round]] = {t.name: [] for pair in cases.values() for t in pair if t}
    ratios: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(args.rounds):
        for name, pair in cases.items():
            targets = [t for t in pair if t is not None]
            if round_ % 2:
                targets.reverse()
            got = {t.name: measured(load, t, args.seconds) for t in targets}
            for key, value in got.items():
                results[key].append(value)
            if pair[1] is not None:
                ratios[name].append(got[pair[0].name].rate / got[pair[1].name].rate)
        print(f"  round {round_ + 1}: " + ", ".join(
            f"{k} {v[-1].rate:,.0f}/s" for k, v in results.items()), flush=True)
    report(cases, results, ratios)
    print(f"after: {load_average()}")


def median_of(rounds: list[Round], field: str) -> float:
    return statistics.median(getattr(r, field) for r in rounds)


def report(cases, results, ratios) -> None:
    print(f"\n{'case':<20} {'server':<8} {'req/s':>8} {'samples/s':>10} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'server CPU us/req':>17} {'errors':>6}")
    for name, pair in cases.items():
        samples = 1 if name.startswith("1 ") else BATCH
        for target in (t for t in pair if t is not None):
            rounds = results[target.name]
            rate = statistics.median(r.rate for r in rounds)
            print(f"{name:<20} {target.name.split('-')[0]:<8} {rate:8,.0f} "
                  f"{rate * samples:10,.0f} {median_of(rounds, 'p50_ms'):7.2f} "
                  f"{median_of(rounds, 'p99_ms'):7.2f} {median_of(rounds, 'cpu_us'):17,.0f} "
                  f"{sum(r.errors for r in rounds):6d}")
    single, many = list(cases)[:2]
    npy_rate = statistics.median(r.rate for r in results["nnq-npy"])
    json_rate = statistics.median(r.rate for r in results["nnq-100"])
    p99 = median_of(results["nnq-1"], "p99_ms")
    print(f"\n{single}: nnq/minimal req/s {statistics.median(ratios[single]):.3f} "
          f"(per round {', '.join(f'{r:.3f}' for r in ratios[single])}; target "
          f">= {TARGET_SINGLE_RATIO}), nnq p99 {p99:.2f} ms (target <= {TARGET_P99_MS})")
    print(f"{many}: nnq/minimal req/s {statistics.median(ratios[many]):.3f} "
          f"(per round {', '.join(f'{r:.3f}' for r in ratios[many])}; target >= 1.0)")
    print(f".npy/JSON samples/s at {BATCH} samples: {npy_rate / json_rate:.2f}x "
          f"(target >= {TARGET_NPY_SPEEDUP})")
    cpu = {name: median_of(rounds, "cpu_us") for name, rounds in results.items()}
    print(f"server CPU per request, nnq/minimal: 1 sample {cpu['nnq-1'] / cpu['min-1']:.3f}, "
          f"{BATCH} samples {cpu['nnq-100'] / cpu['min-100']:.3f}; .npy/JSON CPU per sample "
          f"at {BATCH}: {cpu['nnq-100'] / cpu['nnq-npy']:.2f}x fewer")


if __name__ == "__main__":
    main()
