"""Polling a job or a sweep until it is finished, under a live rich progress bar.

rich draws the bar in a terminal and, through IPython's display, in Jupyter; ``show=False``
polls silently. Used by ``Job.wait`` / ``Sweep.wait`` and so by every CLI command that waits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from nnq.processes import wait_until

POLL_SECONDS = 0.5

# fetch() -> (resource, completed, total, detail, finished)
Fetch = Callable[[], tuple[Any, int, int | None, str, bool]]


def follow(description: str, fetch: Fetch, *, timeout: float | None = None,
           show: bool = True, console: Console | None = None,
           poll: float = POLL_SECONDS) -> Any:
    """Call ``fetch`` every ``poll`` s until it says ``finished``; return the last resource.
    Raises TimeoutError (``nnq.processes.WaitTimeout``) after ``timeout`` seconds."""
    if not show:
        def finished_quietly() -> Any:
            resource, *_, finished = fetch()
            return resource if finished else None

        return wait_until(description, finished_quietly, timeout=timeout, poll=poll)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=None, detail="queued")

        def finished_resource() -> Any:
            resource, completed, total, detail, finished = fetch()
            bar.update(task, total=total or None, completed=completed, detail=escape(detail))
            return resource if finished else None

        return wait_until(description, finished_resource, timeout=timeout, poll=poll)
