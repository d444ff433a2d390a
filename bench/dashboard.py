"""How fast the dashboard's jobs page answers with 10,000 jobs in the database.

Inserts the jobs through the store (``service.db.jobs.create_job``, in one transaction) into
a fresh migrated SQLite file, then times GET / (the newest page) and GET /?page=500 (the
oldest) with the Flask test client and prints the median milliseconds. A benchmark, not a
test: the figure depends on the machine. The aim is well under 300 ms per page.

    .venv/bin/python bench/dashboard.py [--jobs 10000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so a checkout runs it without installing nnq

from service import create_app
from service.dashboard.views_jobs import JOBS_PER_PAGE
from service.db import session_factory, transaction
from service.db.jobs import create_job

SPEC = {"data": {"dataset": "synthetic"}, "model": {"preset": "mlp", "hidden": [100, 100]},
        "train": {"epochs": 5}}
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"  # pages never talk to the broker
WARMUP = 3
TARGET_MS = 300


def migrated_sqlite(directory: str) -> str:
    url = f"sqlite:///{directory}/bench.db"
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    return url


def insert_jobs(url: str, count: int) -> None:
    with session_factory(url)() as session, transaction(session):
        for i in range(count):
            create_job(session, {**SPEC, "name": f"bench-{i}"}, name=f"bench-{i % 50}")


def median_ms(client, path: str, rounds: int) -> float:
    times = []
    for round_ in range(WARMUP + rounds):
        start = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 200, (path, response.status_code)
        if round_ >= WARMUP:
            times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = migrated_sqlite(directory)
        start = time.perf_counter()
        insert_jobs(url, args.jobs)
        print(f"inserted {args.jobs} jobs through the store in {time.perf_counter() - start:.1f} s")
        client = create_app({"NNQ_DATABASE_URL": url, "NNQ_BROKER_URL": UNREACHABLE_BROKER}
                            ).test_client()
        last_page = -(-args.jobs // JOBS_PER_PAGE)
        for path in ("/", f"/?page={last_page}", "/?name=bench-7", "/?status=queued&page=250"):
            ms = median_ms(client, path, args.rounds)
            verdict = "ok" if ms < TARGET_MS else f"over {TARGET_MS} ms"
            print(f"GET {path:<28} median {ms:7.1f} ms over {args.rounds} requests ({verdict})")


if __name__ == "__main__":
    main()
