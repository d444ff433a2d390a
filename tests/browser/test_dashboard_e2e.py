"""The dashboard in a real headless Chromium against a real stack (issue 8).

One story, in the order a person would live it; each test can also run alone (``-k``), since
the jobs and the sweep are submitted once, by whichever test needs them first:

1. ``/`` is open while a job is submitted through the API: its progress bar moves and
   reaches the end, and the row says ``succeeded``.
2. the job's page draws its loss and accuracy curves and one activation histogram per layer.
3. two jobs picked on ``/`` are compared: both listed, their curves drawn, and the spec field
   that differs (``model.batchnorm``) is a row of the spec diff.
4. a stroke drawn with the mouse on a stored model's canvas is classified: a digit and a drawn
   probability chart come back.
5. a finished sweep's page shows its status, every trial and its charts.
6. the workers page lists the stack's worker and its queue.

Every page visited is saved as a full-page screenshot (see conftest.py for where).
The waits are hang guards, not timing assertions.
"""

from __future__ import annotations

import json
import re
import time
from itertools import pairwise
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from nnq.processes import WaitTimeout, wait_until
from tests.browser.conftest import stack_logs

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]

FINISHED = ("succeeded", "failed", "cancelled")
JOB_HANG_GUARD_S = 90.0
SWEEP_HANG_GUARD_S = 120.0
CHART_TIMEOUT_MS = 20_000
PROGRESS_POLL_S = 0.1
MIN_CHANGED_PIXELS = 50

# Long enough (a few seconds on two busy cores) that the progress bar is seen in between.
BATCHNORM_JOB = {
    "name": "e2e-batchnorm",
    "data": {"dataset": "synthetic", "samples": 6000, "val_fraction": 0.1},
    "model": {"preset": "mlp", "hidden": [128, 128], "batchnorm": True, "init": "he"},
    "train": {"epochs": 30, "batch_size": 8, "optimizer": {"type": "adam", "lr": 0.001},
              "seed": 1, "dtype": "float32"},
    "device": "cpu",
}
# The same run without BatchNorm: the field the compare page must show as different.
PLAIN_JOB = {
    **BATCHNORM_JOB,
    "name": "e2e-plain",
    "model": {**BATCHNORM_JOB["model"], "batchnorm": False},
}
# examples/sweep-synthetic-quick.json, a little smaller: eight trials of a fraction of a second.
SWEEP = {
    "name": "e2e-sweep",
    "base": {
        "data": {"dataset": "synthetic", "samples": 1000, "val_fraction": 0.2},
        "model": {"preset": "mlp", "hidden": [32], "batchnorm": False, "init": "he"},
        "train": {"epochs": 4, "batch_size": 20, "optimizer": {"type": "adam", "lr": 0.001},
                  "weight_decay": 0.0, "seed": 0, "dtype": "float32"},
        "device": "cpu",
    },
    "space": {"train.optimizer.lr": {"loguniform": [1e-5, 1e-1]},
              "train.weight_decay": {"loguniform": [1e-8, 1e-3]}},
    "strategy": "random",
    "seed": 0,
    "max_trials": 8,
    "parallelism": 2,
    "metric": "val_acc",
    "pruner": "median",
    "pruner_options": {"warmup_epochs": 1, "min_trials": 2},
}

# Per canvas in (or being) the element: its size and how many pixels differ from the first one
# (an empty canvas, or one only filled with a background, has none; -1: not a 2d canvas).
CANVAS_PIXELS_JS = """
(root) => {
  const canvases = root.tagName === 'CANVAS' ? [root] : Array.from(root.querySelectorAll('canvas'));
  return canvases.map((canvas) => {
    const out = {width: canvas.width, height: canvas.height, changed: 0};
    if (!canvas.width || !canvas.height) return out;
    const ctx = canvas.getContext('2d');
    if (!ctx) { out.changed = -1; return out; }
    const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 4; i < d.length; i += 4) {
      if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2] || d[i + 3] !== d[3]) {
        out.changed += 1;
      }
    }
    return out;
  });
}
"""


class Scenario:
    """The runs the story needs, submitted once through the API (POST /jobs, POST /sweeps)."""

    def __init__(self, stack):
        self.stack = stack
        self.api = httpx.Client(base_url=f"{stack.api_url}/api/v1", timeout=10)
        self.jobs: dict[str, int] = {}
        self.sweep_id: int | None = None

    def submit(self) -> None:
        if self.jobs:
            return
        for key, spec in (("batchnorm", BATCHNORM_JOB), ("plain", PLAIN_JOB)):
            response = self.api.post("/jobs", json=spec)
            assert response.status_code == 202, response.text
            self.jobs[key] = response.json()["id"]
        response = self.api.post("/sweeps", json=SWEEP)
        assert response.status_code == 202, response.text
        self.sweep_id = response.json()["id"]

    def job(self, job_id: int) -> dict:
        return self.api.get(f"/jobs/{job_id}").json()

    def wait_job(self, key: str) -> dict:
        """The job once finished; the test fails, with the stack's logs, unless it succeeded."""
        self.submit()
        job_id = self.jobs[key]

        def finished():
            job = self.job(job_id)
            return job if job["status"] in FINISHED else None

        job = self._wait(f"job {job_id} to finish", finished, JOB_HANG_GUARD_S)
        assert job["status"] == "succeeded", f"{job}\n{stack_logs(self.stack)}"
        return job

    def wait_sweep(self) -> dict:
        self.submit()

        def finished():
            sweep = self.api.get(f"/sweeps/{self.sweep_id}").json()
            return sweep if sweep["status"] in FINISHED else None

        sweep = self._wait(f"sweep {self.sweep_id} to finish", finished, SWEEP_HANG_GUARD_S)
        assert sweep["status"] == "succeeded", f"{sweep}\n{stack_logs(self.stack)}"
        return sweep

    def _wait(self, what, predicate, timeout):
        try:
            return wait_until(what, predicate, timeout=timeout, poll=0.2)
        except WaitTimeout as exc:
            pytest.fail(f"{exc}\n{stack_logs(self.stack)}")


@pytest.fixture(scope="module")
def scenario(stack):
    runs = Scenario(stack)
    yield runs
    runs.api.close()


def open_page(page, stack, path: str):
    response = page.goto(f"{stack.api_url}{path}", wait_until="domcontentloaded")
    assert response is not None and response.status == 200, (
        f"GET {path}: HTTP {response.status if response else 'no response'}")
    return response


def assert_chart_drawn(page, target) -> None:
    """``data-ready="true"`` on the chart container (a selector or a locator), and a canvas of
    non-zero size inside it with something drawn on it (not all one colour)."""
    from playwright.sync_api import expect  # Playwright is optional: see conftest.py

    chart = page.locator(target).first if isinstance(target, str) else target
    try:
        expect(chart).to_have_attribute("data-ready", "true", timeout=CHART_TIMEOUT_MS)
    except AssertionError as exc:
        pytest.fail(f"{target} never got data-ready=\"true\": {exc}\n"
                    f"console errors: {page.console_errors}")
    canvases = chart.evaluate(CANVAS_PIXELS_JS)
    drawn = [c for c in canvases if c["width"] and c["height"]
             and (c["changed"] >= MIN_CHANGED_PIXELS or c["changed"] == -1)]
    assert drawn, f"{target}: no canvas with a drawing inside ({canvases})"


def assert_grid_drawn(page, container: str, chart: str, *, minimum: int,
                      every: bool = True) -> None:
    """A grid of charts (``#activation-charts``, ``#objective-charts``, ...): the grid itself
    carries no data-ready; at least ``minimum`` charts inside it are drawn, and with ``every``
    all of them (on the compare page a layer one job lacks shows a note instead)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    selector = f"{container} {chart}"
    try:
        page.wait_for_function(
            "([s, n]) => document.querySelectorAll(`${s}[data-ready=\"true\"]`).length >= n",
            arg=[selector, minimum], timeout=CHART_TIMEOUT_MS)
    except PlaywrightTimeout as exc:
        pytest.fail(f"{container}: fewer than {minimum} drawn {chart} charts ({exc}): "
                    f"{page.locator(container).inner_html()[:800]}")
    charts = page.locator(selector) if every else page.locator(f'{selector}[data-ready="true"]')
    for index in range(charts.count()):
        assert_chart_drawn(page, charts.nth(index))


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text()


# 1. ------------------------------------------------------------------------------------------

def read_row(page, job_id: int) -> tuple[float, float, str] | None:
    """(value, max, status word) of the job's row on ``/``, read at one instant (the page may
    update between two separate reads), or None while the row is not shown."""
    return page.evaluate(
        """(id) => {
             const row = document.querySelector(`tr[data-job-id="${id}"]`);
             const bar = row && row.querySelector("progress.job-progress");
             const status = row && row.querySelector(".job-status");
             return bar && status ? [bar.value, bar.max, status.textContent.trim()] : null;
           }""", job_id)


def test_jobs_page_shows_a_submitted_job_progress_and_finish(page, stack, scenario, shots):
    open_page(page, stack, "/")
    page.wait_for_selector("#jobs-table", state="attached")
    page.wait_for_selector("#job-filters", state="attached")
    scenario.submit()
    job_id = scenario.jobs["batchnorm"]
    row = f'tr[data-job-id="{job_id}"]'

    seen: list[tuple[float, float]] = []
    statuses: list[str] = []
    deadline = time.monotonic() + JOB_HANG_GUARD_S
    while time.monotonic() < deadline:
        reading = read_row(page, job_id)
        if reading is None:
            time.sleep(PROGRESS_POLL_S)
            continue
        value, maximum, status = reading
        if not seen or seen[-1] != (value, maximum):
            seen.append((value, maximum))
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        if status in FINISHED:
            break
        time.sleep(PROGRESS_POLL_S)
    else:
        pytest.fail(f"job {job_id} did not finish on / (progress seen: {seen})\n"
                    f"{scenario.job(job_id)}\n{stack_logs(stack)}")

    print(f"job {job_id} as read on /: statuses {statuses}, progress {seen}")
    assert "running" in statuses, f"the row never said running: {statuses}"
    assert page.locator(f"{row} .job-status").inner_text().strip() == "succeeded", (
        scenario.job(job_id))
    value, maximum = seen[-1]
    assert maximum > 0 and value == maximum, f"the bar did not reach its end: {seen}"
    assert maximum == scenario.job(job_id)["progress"]["total_iterations"]
    fractions = [v / m for v, m in seen if m > 0]
    between = [f for f in fractions if 0 < f < 1]
    assert between, f"the bar was never seen between empty and full: {seen}"
    assert any(b > a for a, b in pairwise(fractions) if 0 < a < 1), (
        f"the bar was never seen moving: {seen}")

    # The other job is listed too, and the compare controls are there for both.
    scenario.wait_job("plain")
    page.wait_for_selector(f'tr[data-job-id="{scenario.jobs["plain"]}"]', state="attached")
    for key in ("batchnorm", "plain"):
        assert page.locator(f'input.compare-pick[value="{scenario.jobs[key]}"]').count() == 1
    assert page.locator("#compare-selected").count() == 1
    assert not page.console_errors, page.console_errors
    shots.take(page, "jobs.png")


# 2. ------------------------------------------------------------------------------------------

def test_job_page_draws_curves_and_activation_histograms(page, stack, scenario, shots):
    job = scenario.wait_job("batchnorm")
    open_page(page, stack, f"/jobs/{job['id']}")
    page.wait_for_selector("#job-status")
    assert text_of(page, "#job-status").strip() == "succeeded"
    assert BATCHNORM_JOB["name"] in page.locator("body").inner_text()
    spec = text_of(page, "#job-spec")
    assert "batchnorm" in spec and "true" in spec, spec
    layers = text_of(page, "#job-layers")
    assert "BatchNorm" in layers or "batchnorm" in layers.lower(), layers
    assert page.locator("#job-timeline").count() == 1
    assert page.locator("#job-error").count() == 1
    assert page.locator("#cancel-job").count() == 1

    assert_chart_drawn(page, "#loss-chart")
    assert_chart_drawn(page, "#accuracy-chart")
    # one histogram per layer the worker recorded (GET /jobs/{id}/activations)
    recorded = scenario.api.get(f"/jobs/{job['id']}/activations").json()["items"]
    layers = len({item["layer"] for item in recorded})
    assert layers >= len(BATCHNORM_JOB["model"]["hidden"]), recorded[:2]
    assert_histograms_drawn(page, minimum=layers)
    assert page.locator("#activation-charts .activation-chart").count() == layers

    # The epoch slider spans the epochs (it starts at the last); moving it to the first epoch
    # redraws the histograms with that epoch's statistics, and back again with the last's.
    # (The counts drawn are compared, not pixels: a canvas redrawn with the same data need
    # not come out bit for bit the same in every Chromium build.)
    slider = page.locator("input#epoch-slider[type=range]")
    assert slider.count() == 1
    low, high = (int(float(slider.get_attribute(a) or 0)) for a in ("min", "max"))
    assert (low, high) == (1, BATCHNORM_JOB["train"]["epochs"]), (low, high)
    first_layer = min(item["layer"] for item in recorded)
    counts = {item["epoch"]: item["counts"] for item in recorded if item["layer"] == first_layer}
    assert counts[low] != counts[high]
    assert page.evaluate(FIRST_CHART_COUNTS_JS) == counts[high]
    last_epoch = first_chart_image(page)
    slider.fill(str(low))
    page.wait_for_function(f"(want) => JSON.stringify(({FIRST_CHART_COUNTS_JS})()) === want",
                           arg=json.dumps(counts[low], separators=(",", ":")),
                           timeout=CHART_TIMEOUT_MS)
    assert first_chart_image(page) != last_epoch
    assert_histograms_drawn(page, minimum=layers)
    slider.fill(str(high))
    page.wait_for_function(f"(want) => JSON.stringify(({FIRST_CHART_COUNTS_JS})()) === want",
                           arg=json.dumps(counts[high], separators=(",", ":")),
                           timeout=CHART_TIMEOUT_MS)
    assert not page.console_errors, page.console_errors
    shots.take(page, "job.png")


FIRST_CHART_IMAGE_JS = """() => {
  const canvas = document.querySelector('#activation-charts .activation-chart canvas');
  return canvas ? canvas.toDataURL() : null;
}"""


FIRST_CHART_COUNTS_JS = """() => {
  const node = document.querySelector('#activation-charts .activation-chart');
  const chart = node && echarts.getInstanceByDom(node);
  return chart ? chart.getOption().series[0].data : null;
}"""


def first_chart_image(page) -> str:
    image = page.evaluate(FIRST_CHART_IMAGE_JS)
    assert image, "no canvas in the first activation chart"
    return image


def assert_histograms_drawn(page, *, minimum: int) -> None:
    """One drawn ``.activation-chart`` per layer at least."""
    assert_grid_drawn(page, "#activation-charts", ".activation-chart", minimum=minimum)


# 3. ------------------------------------------------------------------------------------------

def test_compare_two_jobs_picked_on_the_jobs_page(page, stack, scenario, shots):
    first = scenario.wait_job("batchnorm")
    second = scenario.wait_job("plain")
    open_page(page, stack, "/")
    for job in (first, second):
        page.locator(f'input.compare-pick[value="{job["id"]}"]').check()
    page.locator("#compare-selected").click()
    page.wait_for_url(re.compile(r".*/compare\?jobs=.*"))
    picked = parse_qs(urlparse(page.url).query)["jobs"][0]
    assert sorted(int(i) for i in re.split(r"[,\s]+", picked) if i) == sorted(
        [first["id"], second["id"]]), page.url

    for selector in ("#compare-loss", "#compare-accuracy"):
        assert_chart_drawn(page, selector)
    # a histogram per job for each layer they share (at least the hidden ReLUs)
    assert_grid_drawn(page, "#compare-activations", ".activation-chart",
                      minimum=2 * len(BATCHNORM_JOB["model"]["hidden"]), every=False)
    body = page.locator("body").inner_text()
    for job in (first, second):
        linked = page.locator(f'a[href$="/jobs/{job["id"]}"]').count() > 0
        assert linked or job["name"] in body, f"job {job['id']} is not listed on {page.url}"
    rows = page.locator("#spec-diff tr", has_text="model.batchnorm")
    assert rows.count() == 1, text_of(page, "#spec-diff")
    row = rows.first.inner_text().lower()
    assert "true" in row and "false" in row, row
    assert not page.console_errors, page.console_errors
    shots.take(page, "compare.png")


# 4. ------------------------------------------------------------------------------------------

def draw_seven(page) -> None:
    """A '7' with the mouse: the top bar, then the diagonal down."""
    box = page.locator("#draw-canvas").bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0, box

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    page.mouse.move(*at(0.25, 0.22))
    page.mouse.down()
    page.mouse.move(*at(0.75, 0.22), steps=12)
    page.mouse.move(*at(0.45, 0.82), steps=16)
    page.mouse.up()


def test_model_page_predicts_a_drawn_digit(page, stack, scenario, shots):
    job = scenario.wait_job("batchnorm")
    model_id = job["model_id"]
    model = scenario.api.get(f"/models/{model_id}").json()
    open_page(page, stack, f"/models/{model_id}")
    page.wait_for_selector("#tensor-table")
    tensors = text_of(page, "#tensor-table")
    for tensor in model["tensors"]:
        assert tensor["name"] in tensors, f"tensor {tensor['name']} not in the tensor table"
    for selector in ("#alias-form", "#png-upload", "#clear-canvas", "#predict-button"):
        assert page.locator(selector).count() == 1, f"{selector} missing"
    canvas = page.locator("canvas#draw-canvas")
    assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("280", "280")

    draw_seven(page)
    strokes = canvas.evaluate(CANVAS_PIXELS_JS)
    assert strokes and strokes[0]["changed"] >= MIN_CHANGED_PIXELS, (
        f"the stroke left no mark on #draw-canvas: {strokes}")
    with page.expect_response(lambda r: "/predict" in r.url) as answer:
        page.locator("#predict-button").click()
    assert answer.value.status == 200, answer.value.text()
    page.wait_for_function(
        "() => /[0-9]/.test(document.querySelector('#predicted-label')?.textContent || '')",
        timeout=CHART_TIMEOUT_MS)
    label = text_of(page, "#predicted-label")
    digits = re.findall(r"(?<![0-9.])[0-9](?![0-9.])", label)
    assert digits, f"no digit 0-9 in #predicted-label: {label!r}"
    answered = answer.value.json()
    if isinstance(answered, dict) and answered.get("labels"):  # the API's predict answer
        assert str(answered["labels"][0]) in digits, (label, answered)
    assert_chart_drawn(page, "#probabilities-chart")
    assert not page.console_errors, page.console_errors
    shots.take(page, "model.png")


# 5. ------------------------------------------------------------------------------------------

def test_finished_sweep_page(page, stack, scenario, shots):
    sweep = scenario.wait_sweep()
    open_page(page, stack, f"/sweeps/{sweep['id']}")
    page.wait_for_selector("#sweep-status")
    assert text_of(page, "#sweep-status").strip() == "succeeded"
    counts = text_of(page, "#sweep-counts")
    assert "succeeded" in counts and str(SWEEP["max_trials"]) in counts, counts
    rows = page.locator("#trials-table tbody tr")
    assert rows.count() == SWEEP["max_trials"], text_of(page, "#trials-table")
    trials_text = text_of(page, "#trials-table")
    for trial in sweep["trials"]:
        assert str(trial["job_id"]) in trials_text, f"trial job {trial['job_id']} not listed"
    assert_grid_drawn(page, "#objective-charts", ".chart", minimum=len(SWEEP["space"]))
    for selector in ("#parallel-chart", "#trial-curves"):
        assert_chart_drawn(page, selector)
    assert sweep["best"] is not None
    best = text_of(page, "#best-trial")
    assert str(sweep["best"]["job_id"]) in best, best
    for selector in ("#promote-form", "#compare-top"):
        assert page.locator(selector).count() == 1, f"{selector} missing"
    assert not page.console_errors, page.console_errors
    shots.take(page, "sweep.png")


# 6. ------------------------------------------------------------------------------------------

def test_workers_page_lists_the_worker_and_its_queue(page, stack, scenario, shots):
    open_page(page, stack, "/workers")
    page.wait_for_selector("#workers-table")
    page.wait_for_function(
        "() => document.querySelectorAll('#workers-table tbody tr').length > 0",
        timeout=CHART_TIMEOUT_MS)
    assert "nnq-up-" in text_of(page, "#workers-table"), text_of(page, "#workers-table")
    page.wait_for_selector("#queues-table")
    assert "cpu" in text_of(page, "#queues-table"), text_of(page, "#queues-table")
    assert page.locator("#waiting-table").count() == 1
    assert not page.console_errors, page.console_errors
    shots.take(page, "workers.png")
