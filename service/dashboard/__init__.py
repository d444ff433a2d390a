"""The dashboard: server-rendered pages under ``/`` whose small scripts read the JSON API
(``/api/v1``) for live progress and charts. Charts are drawn by the vendored Apache ECharts
in ``static/vendor/echarts``; nothing is fetched from the internet."""

from __future__ import annotations

from flask import Flask


def register_dashboard(app: Flask) -> None:
    """Mount the pages and their static files on ``app`` (the API's app)."""
    from service.dashboard import views_jobs, views_models, views_sweeps  # noqa: F401  (routes)
    from service.dashboard.blueprint import bp

    app.register_blueprint(bp)
