"""nnq: the pieces the server and the CLI share.

``from nnq import Client`` is the Python client of the API (nnq.client); its exceptions are
here too (``NnqError`` and its subclasses, from nnq.errors). They load on first use, so the
server's ``import nnq.status`` pulls in no HTTP client.
"""

from __future__ import annotations

from typing import Any

_ERRORS = ("NnqError", "BadRequest", "Unauthorized", "NotFound", "Conflict", "PayloadTooLarge",
           "SpecError", "Unavailable", "ApiUnreachable")
_RESOURCES = ("Job", "Sweep", "Model", "Metrics", "MetricRow", "Trial", "Promotion", "Alias",
              "Health")
__all__ = ["Client", "NnqError", "BadRequest", "Unauthorized", "NotFound", "Conflict",
           "PayloadTooLarge", "SpecError", "Unavailable", "ApiUnreachable", "Job", "Sweep",
           "Model", "Metrics", "MetricRow", "Trial", "Promotion", "Alias", "Health"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from nnq.client import Client

        return Client
    if name in _ERRORS:
        from nnq import errors

        return getattr(errors, name)
    if name in _RESOURCES:
        from nnq import resources

        return getattr(resources, name)
    raise AttributeError(f"module 'nnq' has no attribute {name!r}")
