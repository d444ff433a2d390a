# %% [markdown]
# # The lecture's BatchNorm comparison, through the nnq client
#
# Two small MLPs that differ only in `model.batchnorm`, trained as jobs on a running stack
# (`nnq up`; the API at NNQ_API_URL), their accuracy curves overlaid in one figure, and one
# test image classified by each stored model. Synthetic data and a few epochs: it runs in
# seconds. Run it as a script, or cell by cell (`# %%`) in Jupyter / VS Code:
#
#     NNQ_API_URL=http://127.0.0.1:5000 python examples/lecture.py [FIGURE.png]
#
# The figure goes to FIGURE.png, else $NNQ_LECTURE_FIGURE, else var/lecture.png.

# %%
import copy
import os
import sys
from pathlib import Path

import nncore
from nnq import Client

FIGURE = Path(sys.argv[1] if len(sys.argv) > 1
              else os.environ.get("NNQ_LECTURE_FIGURE", "var/lecture.png"))
WAIT_SECONDS = 300
DATA = {"dataset": "synthetic", "samples": 600, "seed": 0, "val_fraction": 0.1}
BASE = {
    "data": DATA,
    "model": {"preset": "mlp", "hidden": [64, 64, 64], "batchnorm": False,
              "init": "std", "init_std": 0.05},
    "train": {"epochs": 5, "batch_size": 50, "optimizer": {"type": "sgd", "lr": 0.05},
              "seed": 0, "dtype": "float32"},
    "device": "cpu",
}

client = Client()  # NNQ_API_URL and NNQ_API_TOKEN, like the nnq CLI
print(f"API: {client.url}")

# %% Submit the two specs; only model.batchnorm differs.
jobs = {}
for batchnorm in (False, True):
    spec = copy.deepcopy(BASE)
    spec["name"] = f"lecture-batchnorm-{'on' if batchnorm else 'off'}"
    spec["model"]["batchnorm"] = batchnorm
    jobs[batchnorm] = client.submit(spec)
    print(f"submitted job {jobs[batchnorm].id}: {spec['name']}")

# %% Wait for both (a live progress bar each); a failed job is returned, not raised.
for job in jobs.values():
    job.wait(timeout=WAIT_SECONDS)
    print(f"job {job.id} {job.status}" + (f": {job.error}" if job.error else ""))
if any(job.status != "succeeded" for job in jobs.values()):
    sys.exit(1)

# %% The per-epoch metrics (job.metrics().to_dataframe() with pandas installed).
for batchnorm, job in jobs.items():
    last = job.metrics()[-1]
    print(f"batchnorm={str(batchnorm).lower()}: job {job.id}, {last.epoch} epochs, "
          f"train_acc {last.train_acc:.4f}, test_acc {last.test_acc:.4f}")

# %% Overlay the accuracy curves in one figure (job.plot draws into the Axes it is given).
figure = jobs[False].plot(curves=("train_acc", "test_acc"), label="batchnorm off")
axes = figure.axes[0]
jobs[True].plot(ax=axes, curves=("train_acc", "test_acc"), label="batchnorm on")
axes.set_title("BatchNorm on vs off: accuracy per epoch")
FIGURE.parent.mkdir(parents=True, exist_ok=True)
figure.savefig(FIGURE)
print(f"figure: {FIGURE} ({len(axes.lines)} curves)")
figure  # noqa: B018 - shown inline in a notebook

# %% Classify one test image with each stored model.
options = {key: value for key, value in DATA.items() if key != "dataset"}
dataset = nncore.load_dataset(DATA["dataset"], **options)  # the data the workers trained on
image, truth = dataset.x_test[:1], int(dataset.t_test[0])
for batchnorm, job in jobs.items():
    labels, probabilities = client.predict(job.model_id, image)
    print(f"model {job.model_id} (batchnorm={str(batchnorm).lower()}): test image 0 is "
          f"{labels[0]} with p={probabilities[0].max():.3f} (true label {truth})")

client.close()
