"""Pages about stored models: the list, and one model with its tensors and a predict pad."""

from __future__ import annotations

from flask import abort, render_template, request

from nncore.onnx_export import signature
from service.api.deps import db
from service.dashboard.blueprint import bp
from service.dashboard.paging import Pager
from service.dashboard.queries import known_id, page_number
from service.db import Model, model_store
from service.db import jobs as job_store
from service.db.reproductions import reproductions_of

MODELS_PER_PAGE = 20
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
CLASS_NAMES = {"fashion-mnist": FASHION_CLASSES}


def _model_or_404(model_id: int) -> Model:
    model = model_store.get_model(db(), known_id(model_id))
    if model is None:
        abort(404, f"no model {model_id}")
    return model


def class_names(model: Model) -> list[str]:
    """Names of the model's classes when its training data has them, else the digits."""
    job = job_store.get_job(db(), model.job_id) if model.job_id else None
    dataset = ((job.spec if job else {}).get("data") or {}).get("dataset")
    return CLASS_NAMES.get(dataset, [str(i) for i in range(model.num_classes)])


@bp.get("/models")
def models():
    number = page_number(request.args)
    found, total = model_store.list_models(db(), MODELS_PER_PAGE,
                                           Pager.offset_of(number, MODELS_PER_PAGE))
    aliases = model_store.aliases_of(db(), [m.id for m in found])
    return render_template("models.html", models=found, aliases=aliases,
                           pager=Pager(number, MODELS_PER_PAGE, total))


@bp.get("/models/<int:model_id>")
def model(model_id: int):
    found = _model_or_404(model_id)
    return render_template("model.html", model=found,
                           tensors=model_store.tensors(db(), found.id, with_data=False),
                           aliases=model_store.aliases_of(db(), [found.id])[found.id],
                           classes=class_names(found),
                           onnx=signature(found.input_shape, found.num_classes, found.dtype),
                           reproductions=reproductions_of(db(), found.id))
