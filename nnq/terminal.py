"""Where every nnq command writes: stdout and stderr consoles, the error line with its exit
code, and how often a live progress bar polls."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

EXIT_FAILED = 1
EXIT_UNREACHABLE = 2
EXIT_INTERRUPTED = 130
WATCH_POLL_SECONDS = 0.5
# Piped output (logs, `> results.txt`) gets a wide table instead of rich's 80 columns, so the
# ranked parameters of a sweep are not cut to "1.46e-…".
PIPED_WIDTH = 200

console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
err_console = Console(stderr=True)


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print ``error: message`` (plain text, never wrapped) and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False,
                      soft_wrap=True)
    return typer.Exit(code)


def say(text: str, label: str | None = None) -> None:
    """Print plain text: no markup, no highlighting (ids and values stay as the API sent them);
    a ``label`` (`nnq up`, `demo`) goes first, in colour, to tell whose line it is."""
    prefix = f"[cyan]{escape(label)}:[/] " if label else ""
    console.print(prefix + escape(text), highlight=False)
