"""How commands reach the API: the URL chosen with `--api` (or NNQ_API_URL), and calls whose
ApiError becomes the error line and exit code instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from nnq.client import Api, ApiError
from nnq.terminal import EXIT_FAILED, EXIT_UNREACHABLE, fail

T = TypeVar("T")


class _Options:
    """Set once by the top-level `nnq` callback, read by every command."""

    api_url: str | None = None


options = _Options()


def api() -> Api:
    return Api(options.api_url)


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one API call; an ApiError becomes a printed message and a non-zero exit (2 when the
    API cannot be reached at all)."""
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        raise fail(str(exc), EXIT_UNREACHABLE if exc.status is None else EXIT_FAILED) from None
