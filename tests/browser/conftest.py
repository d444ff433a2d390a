"""Fixtures for the dashboard's end-to-end test in a real headless Chromium (issue 8).

- ``stack``: a whole local stack for the module (private redis-server, a fresh migrated SQLite
  file, the API under ``flask run``, one Celery worker), started with ``nnq.stack.Stack``, the
  same code ``nnq up`` runs.
- ``browser``: Debian's ``chromium`` driven by Playwright (``executable_path``; Playwright's
  own browser downloads are never used). Without ``/usr/bin/chromium`` the tests are skipped
  with the reason, unless ``NNQ_REQUIRE_BROWSER=1`` (set by ``.ci/run`` once it installed
  Chromium) makes that a failure.
- ``shots``: saves a full-page screenshot of each page to ``$NNQ_ARTIFACTS`` (default
  ``var/test-artifacts/browser/``) and, only when ``NNQ_SCREENSHOTS_TO`` names a folder, copies
  the README's screenshots there (``NNQ_SCREENSHOTS_TO=docs/screenshots``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nnq.processes import free_port
from nnq.stack import Stack, StackConfig, StackError
from tests.support import ROOT

CHROMIUM_ENV = "NNQ_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
REQUIRE_BROWSER_ENV = "NNQ_REQUIRE_BROWSER"
ARTIFACTS_ENV = "NNQ_ARTIFACTS"
DEFAULT_ARTIFACTS = ROOT / "var" / "test-artifacts" / "browser"
SCREENSHOTS_TO_ENV = "NNQ_SCREENSHOTS_TO"
README_SCREENSHOTS = ("job.png", "compare.png", "model.png", "sweep.png")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
DEFAULT_TIMEOUT_MS = 30_000
STACK_LEASE_SECONDS = "5"
WORKER_CONCURRENCY = 2  # the long job, the short one and then the sweep's trials side by side


def _browser_unavailable() -> str | None:
    """None when Chromium and Playwright are here, else the skip reason."""
    chromium = os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM
    if not os.access(chromium, os.X_OK):
        return (f"Chromium not found at {chromium}: install Debian's `chromium` package "
                f"(apt-get install chromium) or set {CHROMIUM_ENV}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"Playwright for Python is not installed ({exc}); pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="module")
def browser_executable() -> str:
    reason = _browser_unavailable()
    if reason:
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{REQUIRE_BROWSER_ENV}=1 but {reason}")
        pytest.skip(reason)
    return os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM


@pytest.fixture(scope="module")
def stack(browser_executable, tmp_path_factory):
    """A real stack on a free port, stopped (every process group) after the module."""
    tmp = tmp_path_factory.mktemp("stack")
    config = StackConfig(port=free_port(), private_broker=True, log_dir=tmp / "logs",
                         database_url=f"sqlite:///{tmp / 'e2e.db'}",
                         concurrency=WORKER_CONCURRENCY)
    messages: list[str] = []
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NNQ_LEASE_SECONDS", STACK_LEASE_SECONDS)
        env.delenv("NNQ_API_TOKEN", raising=False)
        running = Stack(config, say=messages.append)
        try:
            running.start()
        except StackError as exc:
            pytest.fail(f"the stack did not start: {exc}\n" + "\n".join(messages))
    try:
        yield running
    finally:
        running.stop()


def stack_logs(stack: Stack) -> str:
    """The tail of each child's log, for a failure message."""
    parts = []
    for child in stack.children:
        parts.append(f"--- {child.name} ---\n{child.log_tail(40)}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def browser(browser_executable, tmp_path_factory):
    """One headless Chromium with a fresh, empty profile for the module (a browser context)."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=browser_executable, headless=True,
            args=CHROMIUM_ARGS, viewport=VIEWPORT)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser):
    """A new tab; the browser's console errors and failed requests are kept for messages."""
    tab = browser.new_page()
    tab.console_errors = []
    tab.on("console", lambda msg: msg.type == "error" and tab.console_errors.append(msg.text))
    tab.on("pageerror", lambda exc: tab.console_errors.append(f"page error: {exc}"))
    yield tab
    tab.close()


def artifacts_dir() -> Path:
    configured = os.environ.get(ARTIFACTS_ENV)
    return Path(configured) if configured else DEFAULT_ARTIFACTS


class Shots:
    """Full-page screenshots named after the page (jobs.png, job.png, ...)."""

    def __init__(self, folder: Path, copy_to: Path | None):
        self.folder = folder
        self.copy_to = copy_to
        self.saved: list[Path] = []

    def take(self, page, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        page.screenshot(path=str(path), full_page=True)
        self.saved.append(path)
        if self.copy_to is not None and name in README_SCREENSHOTS:
            self.copy_to.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.copy_to / name)
        return path


@pytest.fixture(scope="module")
def shots() -> Shots:
    copy_to = os.environ.get(SCREENSHOTS_TO_ENV)
    target = None
    if copy_to:
        target = Path(copy_to)
        if not target.is_absolute():
            target = ROOT / target
    return Shots(artifacts_dir(), target)
