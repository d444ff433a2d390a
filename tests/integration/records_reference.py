"""The numbers a worker's run records must equal, computed by nncore in a fresh process that
runs BLAS on the worker's thread count (float32 sums, and so a whole training run, depend on it).

    python -m tests.integration.records_reference SPEC_JSON DATABASE_URL JOB_ID

prints JSON: the uninterrupted run's loss stride, steps per epoch and kept losses, and the
activation statistics of the job's stored model on the run's probe batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT


def reference(spec: dict, database_url: str, job_id: int) -> dict:
    """Run this module in a subprocess with the worker's BLAS settings; its JSON answer."""
    from workers import BLAS_THREAD_VARIABLES, WORKER_BLAS_THREADS

    env = {**os.environ, **{v: os.environ.get(v, WORKER_BLAS_THREADS)
                            for v in BLAS_THREAD_VARIABLES}}
    out = subprocess.run([sys.executable, "-m", __name__, json.dumps(spec), database_url,
                          str(job_id)], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def main(argv: list[str]) -> None:
    from sqlalchemy import select

    import nncore
    from nncore.training import probe_batch
    from service.db import Model, session_factory
    from service.db.tensors import state_from_rows

    spec, url, job_id = json.loads(argv[0]), argv[1], int(argv[2])
    run = nncore.TrainingRun.from_spec(spec)
    kept = []
    run.fit(on_epoch=lambda _row, record: kept.extend(
        [i, record.epoch, loss] for i, loss in record.losses))
    with session_factory(url)() as session:
        model = session.scalars(select(Model).where(Model.job_id == job_id)).one()
        net = nncore.Network(model.layers, model.input_shape, model.num_classes,
                             dtype=model.dtype)
        net.load_state_dict(state_from_rows(model.tensors))
    probe = probe_batch(run.dataset)
    print(json.dumps({"every": run.loss_every, "steps_per_epoch": run.steps_per_epoch,
                      "hidden": net.hidden_layers(), "probe_size": len(probe),
                      "losses": kept, "stats": net.activation_stats(probe)}))


if __name__ == "__main__":
    main(sys.argv[1:])
