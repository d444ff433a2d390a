"""JSON at the speed predict needs, without changing what any endpoint accepts.

A 100-image predict body is about a megabyte of numbers: the standard library parses it in
~25 ms, orjson in ~3 ms. ``FastJSONProvider`` parses the bodies of ``NUMERIC_ENDPOINTS`` with
orjson and everything else with the standard library, because orjson reads an integer beyond
64 bits as a float, which only a body of numbers may do (predict turns every input into a
float anyway). Whatever orjson refuses (NaN, UTF-16, nesting past its limit) goes to the
standard library too, so the accepted JSON and every error stay as they were. Responses keep
Flask's writer; ``numpy_json`` writes the predict response, whose arrays orjson reads
directly (as float64, so a float32 probability round-trips exactly).
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import has_request_context, request
from flask.json.provider import DefaultJSONProvider

# Endpoints whose JSON body is samples of numbers.
NUMERIC_ENDPOINTS = frozenset({"models.predict"})


class FastJSONProvider(DefaultJSONProvider):
    """Flask's provider, with orjson first for the bodies of ``NUMERIC_ENDPOINTS``."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if not kwargs and has_request_context() and request.endpoint in NUMERIC_ENDPOINTS:
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                pass
        return super().loads(s, **kwargs)


def numpy_json(payload: Any) -> bytes:
    """``payload`` as JSON bytes; NumPy arrays inside are written as nested lists."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
