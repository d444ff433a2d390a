"""The Flask app factory: config, DB sessions, error shape, auth and the /api/v1 blueprints."""

from __future__ import annotations

from flask_openapi3 import Info, OpenAPI

from service import config as service_config
from service.api import API_PREFIX, register_api
from service.api.deps import EXTENSION, close_db
from service.auth import require_token
from service.db import session_factory
from service.errors import (
    VALIDATION_STATUS,
    ErrorResponse,
    check_json_body,
    error_responses,
    register_error_handlers,
    validation_error_callback,
)

API_VERSION = "1.0.0"
BEARER = {"type": "http", "scheme": "bearer"}


def create_app(config: dict | None = None) -> OpenAPI:
    """A new app; ``config`` overrides the NNQ_* environment (tests pass URLs here)."""
    app = OpenAPI(
        __name__,
        info=Info(title="nnq", version=API_VERSION,
                  description="Training jobs for the NumPy networks of Deep Learning from "
                              "Scratch, and inference from the stored models."),
        security_schemes={"bearer": BEARER},
        responses=error_responses(),
        doc_prefix=API_PREFIX,
        doc_url="/openapi.json",
        validation_error_status=VALIDATION_STATUS,
        validation_error_model=ErrorResponse,
        validation_error_callback=validation_error_callback,
        static_folder=None,
    )
    app.config.update(service_config.from_env())
    app.config.update(config or {})
    app.json.sort_keys = False
    app.extensions[EXTENSION] = {"sessions": session_factory(app.config["NNQ_DATABASE_URL"])}
    app.teardown_appcontext(close_db)
    app.before_request(require_token)
    app.before_request(check_json_body)
    register_error_handlers(app)
    register_api(app)
    return app
