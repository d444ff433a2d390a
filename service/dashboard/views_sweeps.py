"""Pages about sweeps (the list, one sweep ranked) and the workers' page."""

from __future__ import annotations

from flask import abort, render_template, request

from service.api.deps import db
from service.dashboard.blueprint import bp
from service.dashboard.paging import Pager
from service.dashboard.queries import known_id, page_number
from service.sweeps import store as sweep_store
from service.sweeps.ranking import counts

SWEEPS_PER_PAGE = 20
COMPARE_TOP = 3  # the top trials one click compares


@bp.get("/sweeps")
def sweeps():
    number = page_number(request.args)
    found, total = sweep_store.list_sweeps(db(), None, SWEEPS_PER_PAGE,
                                           Pager.offset_of(number, SWEEPS_PER_PAGE))
    return render_template("sweeps.html", sweeps=found,
                           counts=sweep_store.trial_counts(db(), found),
                           pager=Pager(number, SWEEPS_PER_PAGE, total))


@bp.get("/sweeps/<int:sweep_id>")
def sweep(sweep_id: int):
    found = sweep_store.get_sweep(db(), known_id(sweep_id))
    if found is None:
        abort(404, f"no sweep {sweep_id}")
    ranked, best = sweep_store.ranked(db(), found)
    top_jobs = [t.job_id for t in ranked if t.job_id is not None][:COMPARE_TOP]
    return render_template("sweep.html", sweep=found, trials=ranked, best=best,
                           counts=counts(ranked),
                           params=list(found.request.get("space", {})), top_jobs=top_jobs,
                           compare_top=COMPARE_TOP)


@bp.get("/workers")
def workers():
    """Workers, queue depths and the longest-waiting jobs: all read live by the script."""
    return render_template("workers.html")
