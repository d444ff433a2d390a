"""The dashboard's blueprint: templates, static files, filters and HTML error pages."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from nnq.status import JobStatus
from service.api import API_PREFIX
from service.dashboard import formatting
from service.dashboard.queries import BadQuery

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")

NOT_FOUND = 404
BAD_REQUEST = 400

for _name, _filter in formatting.FILTERS.items():
    bp.add_app_template_filter(_filter, _name)


@bp.context_processor
def _page_globals() -> dict:
    """What every page's scripts need: where the JSON API is, and which statuses may still
    change (jobs' and sweeps' share them), so no script keeps its own copy of the vocabulary."""
    return {"api_base": request.script_root + API_PREFIX,
            "live_statuses": ",".join(sorted(JobStatus.LIVE))}


@bp.errorhandler(NOT_FOUND)
def _not_found(exc):
    """Unknown ids get a page (with the nav), not the API's JSON error."""
    return render_template("error.html", status=NOT_FOUND, message=exc.description), NOT_FOUND


@bp.errorhandler(BadQuery)
def _bad_query(exc: BadQuery):
    return render_template("error.html", status=BAD_REQUEST, message=str(exc)), BAD_REQUEST
