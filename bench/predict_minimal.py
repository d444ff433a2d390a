"""The baseline ``bench/predict.py`` measures nnq's predict against: plain Flask and NumPy.

It keeps an MLP's tensors (Affine, BatchNorm, ReLU, named as nncore names them) from the
``.npz`` at ``$PREDICT_MINIMAL_STATE`` in memory and answers ``POST /predict`` with
``{"inputs": [...]}`` the way nnq's JSON predict does: labels and softmax probabilities.
No auth, validation, database or error shape: what is left is the framework's own cost.
Run: ``gunicorn -w 2 --chdir bench predict_minimal:app``.
"""

import os

import numpy as np
from flask import Flask, request

BATCHNORM_EPS = 1e-5
state = np.load(os.environ["PREDICT_MINIMAL_STATE"], allow_pickle=False)
affine = [(state[f"{i}.W"], state[f"{i}.b"]) for i in (0, 3, 6)]
batchnorm = []
for i in (1, 4):
    scale = state[f"{i}.gamma"] / np.sqrt(state[f"{i}.running_var"] + BATCHNORM_EPS)
    batchnorm.append((scale, state[f"{i}.beta"] - state[f"{i}.running_mean"] * scale))
app = Flask(__name__)


@app.post("/predict")
def predict():
    x = np.asarray(request.get_json()["inputs"], dtype=np.float32).reshape(-1, 784)
    for (w, b), (scale, shift) in zip(affine, batchnorm):
        x = np.maximum((x @ w + b) * scale + shift, 0)
    w, b = affine[-1]
    z = x @ w + b
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return {"labels": p.argmax(axis=1).tolist(), "probabilities": p.tolist()}
