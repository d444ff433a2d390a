"""The JSON API under /api/v1: one blueprint per resource."""

from __future__ import annotations

from flask_openapi3 import OpenAPI

API_PREFIX = "/api/v1"


def register_api(app: OpenAPI) -> None:
    from service.api import health, jobs, lineage, models, sweeps, workers

    for module in (jobs, sweeps, models, lineage, workers, health):
        app.register_api(module.bp)
