"""The Flask app factory: config, DB sessions, error shape, auth, the /api/v1 blueprints and
the dashboard pages under /."""

from __future__ import annotations

from flask_openapi3 import Info, OpenAPI

from service.api import API_PREFIX, register_api
from service.api.deps import EXTENSION, close_db
from service.api.document import finish_document
from service.auth import require_token
from service.body_limit import BodyLimit
from service.dashboard import register_dashboard
from service.db import session_factory
from service.errors import (
    VALIDATION_STATUS,
    ErrorResponse,
    check_json_body,
    error_responses,
    refuse_nul_characters,
    register_error_handlers,
    validation_error_callback,
)
from service.jsonio import FastJSONProvider
from service.settings import Settings, settings

API_VERSION = "1.0.0"
BEARER = {"type": "http", "scheme": "bearer"}
MAX_BODY_BYTES = 16 * 1024 * 1024  # an .npy of 1000 float64 samples is ~6 MiB


def flask_config(config: Settings) -> dict:
    """The settings under the app's config keys (tests and deployments override these)."""
    return {
        "NNQ_DATABASE_URL": config.database_url,
        "NNQ_BROKER_URL": config.broker_url,
        "NNQ_API_TOKEN": config.api_token,
        "NNQ_DATA_DIR": config.data_dir,
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        "NNQ_MAX_QUEUED_PER_TOKEN": config.max_queued_per_token,
    }


def create_app(config: dict | None = None) -> OpenAPI:
    """A new app; ``config`` overrides the settings (tests pass URLs here)."""
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
    app.config.update(flask_config(settings()))
    app.config.update(config or {})
    app.json = FastJSONProvider(app)
    app.json.sort_keys = False
    app.extensions[EXTENSION] = {"sessions": session_factory(app.config["NNQ_DATABASE_URL"])}
    app.teardown_appcontext(close_db)
    app.before_request(require_token)
    app.before_request(check_json_body)
    app.before_request(refuse_nul_characters)
    register_error_handlers(app)
    register_api(app)
    register_dashboard(app)
    finish_document(app)
    app.wsgi_app = BodyLimit(app)
    return app
