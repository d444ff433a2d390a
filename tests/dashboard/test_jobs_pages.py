"""The jobs list, one job and the comparison, rendered by the Flask test client: content,
escaping, server-side pagination and filters, and HTML 404/400 pages."""

from __future__ import annotations

import html

from tests.dashboard.conftest import SPEC, add_job, job_ids, run_job

XSS = "<script>alert(1)</script>"
NAV = ('href="/">Jobs', 'href="/sweeps">Sweeps', 'href="/models">Models', 'href="/workers">Workers')
PAGE_SIZE = 20


def test_jobs_page_lists_jobs_with_progress_status_and_accuracies(sessions, page):
    first = add_job(sessions, "first")
    second = add_job(sessions, "second")
    run_job(sessions, second, [0.8, 0.9])
    status, text = page("/")
    assert status == 200
    assert all(link in text for link in NAV)
    assert 'id="jobs-table"' in text and 'id="job-filters"' in text
    assert job_ids(text) == [second, first]  # newest first
    assert '<progress class="job-progress" value="20"\n                max="30">' in text
    assert '<td class="job-status">running</td>' in text
    assert "90.0 %" in text and "80.0 %" in text  # last epoch's train and test accuracy
    assert f'class="compare-pick" value="{first}"' in text and 'id="compare-selected"' in text


def test_job_names_and_errors_are_shown_as_text(sessions, page):
    job_id = add_job(sessions, XSS)
    run_job(sessions, job_id, [0.5], fail=f"bad {XSS}")
    for path in ("/", f"/jobs/{job_id}", f"/compare?jobs={job_id}"):
        status, text = page(path)
        assert status == 200
        assert XSS not in text, path
        assert html.escape(XSS, quote=False) in text, path


def test_pages_are_numbered_on_the_server_and_keep_the_filters(sessions, page):
    ids = [add_job(sessions, "bulk") for _ in range(2 * PAGE_SIZE + 5)]
    newest_first = ids[::-1]
    _, text = page("/")
    assert job_ids(text) == newest_first[:PAGE_SIZE]
    assert 'class="page-link" href="/?page=2"' in text
    _, text = page("/?page=3")
    assert job_ids(text) == newest_first[2 * PAGE_SIZE:]
    assert "page 3 of 3" in text
    _, text = page("/?page=2&name=bulk")
    assert job_ids(text) == newest_first[PAGE_SIZE:2 * PAGE_SIZE]
    assert 'href="/?page=3&amp;name=bulk"' in text
    status, text = page("/?page=9")
    assert status == 200 and job_ids(text) == [] and "No jobs on this page" in text


def test_filters_by_status_name_and_sweep(sessions, page):
    queued = add_job(sessions, "alpha")
    running = add_job(sessions, "beta")
    run_job(sessions, running, [0.5])
    in_sweep = add_job(sessions, "alpha", sweep_id=7)
    assert job_ids(page("/?status=running")[1]) == [running]
    assert job_ids(page("/?name=alpha")[1]) == [in_sweep, queued]
    assert job_ids(page("/?status=queued&name=beta")[1]) == []
    assert job_ids(page("/?sweep=7")[1]) == [in_sweep]
    assert job_ids(page("/?sweep=7&status=running")[1]) == []
    status, text = page("/?sweep=12345")
    assert status == 200 and job_ids(text) == [] and "match these filters" in text


def test_bad_query_values_are_a_400_page(page):
    for query in ("status=bogus", "page=0", "page=abc", "sweep=x", "page=99999999999"):
        status, text = page(f"/?{query}")
        assert status == 400, query
        assert "<nav>" in text and query.split("=")[0] + ":" in text


def test_odd_query_values_are_a_400_page_not_a_server_error(page):
    # "²" passes str.isdigit but not int(); int() refuses 4,301+ digits; PostgreSQL refuses
    # a NUL in a parameter: each was a 500 before.
    for path in ("/?page=%C2%B2", "/?sweep=%C2%B2", "/?page=" + "1" * 5000, "/?name=a%00b",
                 "/compare?jobs=1,%C2%B2", "/compare?jobs=" + "9" * 5000):
        status, text = page(path)
        assert status == 400, path[:40]
        assert "<nav>" in text, path[:40]


def test_a_page_past_the_last_links_back_to_the_last(sessions, page):
    add_job(sessions, "only")
    status, text = page("/?page=7")
    assert status == 200 and "No jobs on this page" in text
    assert 'class="page-link" href="/?page=1">‹ previous' in text and "page 7 of 1" in text


def test_job_page_shows_spec_layers_metrics_timeline_and_controls(sessions, page):
    job_id = add_job(sessions, "bn-mlp")
    run_job(sessions, job_id, [0.7, 0.95])
    status, text = page(f"/jobs/{job_id}")
    assert status == 200
    for element in ("job-status", "job-spec", "job-layers", "job-timeline", "job-error",
                    "loss-chart", "accuracy-chart", "gap-chart", "gap-note", "activation-charts",
                    "epoch-slider", "cancel-job"):
        assert f'id="{element}"' in text, element
    assert '<input type="range" id="epoch-slider"' in text
    assert "&#34;hidden&#34;: [\n      16\n    ]" in text  # the spec, pretty-printed and escaped
    assert "batchnorm" in text and "<td>affine</td>" in text  # the expanded layers
    assert text.count('<tr data-epoch=') == 2 and "95.0 %" in text and "10.0 %" in text  # gap
    assert "started" in text and 'data-live="true"' in text
    assert '<button id="cancel-job" type="button" >' in text


def test_finished_job_shows_its_error_and_no_cancel(sessions, page):
    job_id = add_job(sessions, "doomed")
    run_job(sessions, job_id, [0.5], fail="loss became NaN at epoch 1, iteration 7")
    _, text = page(f"/jobs/{job_id}")
    assert "loss became NaN at epoch 1, iteration 7</pre>" in text
    assert '<button id="cancel-job" type="button" disabled>' in text
    assert "ended" in text and ": failed" in text


def test_unknown_ids_are_html_404_pages(page):
    for path in ("/jobs/999", "/jobs/99999999999", "/models/999", "/sweeps/999",
                 "/compare?jobs=999"):
        status, text = page(path)
        assert status == 404, path
        assert text.startswith("<!doctype html>") and "<h1>404</h1>" in text, path


def test_compare_shows_chart_containers_and_only_the_differing_spec_fields(sessions, page):
    plain = add_job(sessions, "plain")
    with_bn = add_job(sessions, "bn", spec={**SPEC, "model": {**SPEC["model"], "batchnorm": False},
                                            "train": {"epochs": 3, "weight_decay": 0.1}})
    status, text = page(f"/compare?jobs={plain},{with_bn}")
    assert status == 200
    for element in ("compare-loss", "compare-accuracy", "compare-activations", "spec-diff"):
        assert f'id="{element}"' in text
    assert f'data-jobs="{plain},{with_bn}"' in text
    fields = {"name", "model.batchnorm", "train.weight_decay"}
    assert {f for f in fields if f'data-field="{f}"' in text} == fields
    assert 'data-field="model.hidden"' not in text and 'data-field="train.epochs"' not in text


def test_compare_without_jobs_explains_how_to_pick_them(page):
    status, text = page("/compare")
    assert status == 200 and "Compare selected" in text and 'id="spec-diff"' in text
    assert page("/compare?jobs=1,x")[0] == 400
    assert page("/compare?jobs=" + ",".join(str(i) for i in range(1, 20)))[0] == 400


def test_a_job_page_offers_one_click_comparisons_with_its_single_field_twins(sessions, page):
    with_bn = add_job(sessions, "bn-on")
    without_bn = add_job(sessions, "bn-off", spec={**SPEC, "model": {**SPEC["model"],
                                                                   "batchnorm": False}})
    two_changes = add_job(sessions, "other", spec={**SPEC, "model": {**SPEC["model"],
                                                                    "hidden": [8]},
                                                   "train": {"epochs": 9}})
    _, text = page(f"/jobs/{with_bn}")
    assert f'data-twin-id="{without_bn}"' in text
    assert f'href="/compare?jobs={with_bn},{without_bn}"' in text
    assert "<code>model.batchnorm</code> true here, false there" in text
    assert f'data-twin-id="{two_changes}"' not in text
    _, text = page(f"/jobs/{two_changes}")
    assert 'data-twin-id="' not in text and "No recent job differs" in text
