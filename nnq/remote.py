"""How commands reach the API: the Client for the URL chosen with `--api` (or NNQ_API_URL),
and calls whose NnqError becomes the error line and exit code instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from nnq.client import Client
from nnq.errors import ApiUnreachable, NnqError
from nnq.terminal import EXIT_FAILED, EXIT_UNREACHABLE, fail

T = TypeVar("T")


class _Options:
    """Set once by the top-level `nnq` callback, read by every command."""

    api_url: str | None = None


options = _Options()


def api() -> Client:
    return Client(options.api_url)


def exit_code(exc: NnqError) -> int:
    """2 when the API could not be reached at all, 1 for any answer that was an error."""
    return EXIT_UNREACHABLE if isinstance(exc, ApiUnreachable) else EXIT_FAILED


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one client call; an NnqError becomes a printed message and a non-zero exit."""
    try:
        return fn(*args, **kwargs)
    except NnqError as exc:
        raise fail(str(exc), exit_code(exc)) from None
