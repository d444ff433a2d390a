"""The one HTTP transport of nnq: `/api/v1` on one base URL, the bearer token, retries.

Only calls that are safe to repeat are retried: GET and PUT, and a POST that carries an
``Idempotency-Key`` header (the server returns the same job or sweep for a repeated key).
A retry follows a connection failure, a timeout or a 502/503/504 answer, after
``BACKOFF_SECONDS * BACKOFF_FACTOR**n`` seconds (capped at ``BACKOFF_MAX_SECONDS``), at most
``RETRIES`` times. ``attempts`` counts every request sent, for tests and diagnostics.
Failures become ``nnq.errors`` exceptions.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from nnq.errors import ApiUnreachable, NnqError, error_from_response

DEFAULT_API_URL = "http://127.0.0.1:5000"
API_PREFIX = "/api/v1"
URL_ENV = "NNQ_API_URL"
TOKEN_ENV = "NNQ_API_TOKEN"
TIMEOUT_SECONDS = 60.0
RETRIES = 3
BACKOFF_SECONDS = 0.25
BACKOFF_FACTOR = 2.0
BACKOFF_MAX_SECONDS = 4.0
RETRY_STATUSES = frozenset({502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
IDEMPOTENCY_HEADER = "Idempotency-Key"


class Transport:
    """httpx under the API prefix; ``request`` returns a 2xx response or raises NnqError."""

    def __init__(self, base_url: str | None = None, token: str | None = None, *,
                 retries: int = RETRIES, backoff: float = BACKOFF_SECONDS,
                 timeout: float = TIMEOUT_SECONDS):
        self.base_url = (base_url or os.environ.get(URL_ENV) or DEFAULT_API_URL).rstrip("/")
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.backoff = backoff
        self.attempts = 0
        self.http = httpx.Client(base_url=self.base_url + API_PREFIX, headers=headers,
                                 timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def retriable(self, method: str, headers: dict | None) -> bool:
        return method.upper() in IDEMPOTENT_METHODS or IDEMPOTENCY_HEADER in (headers or {})

    def delay(self, retry: int) -> float:
        """Seconds to sleep before retry number ``retry`` (0-based)."""
        return min(self.backoff * BACKOFF_FACTOR ** retry, BACKOFF_MAX_SECONDS)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        tries = 1 + (self.retries if self.retriable(method, kwargs.get("headers")) else 0)
        for attempt in range(tries):
            if attempt:
                time.sleep(self.delay(attempt - 1))
            last = attempt == tries - 1
            self.attempts += 1
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if last:
                    raise self._unreachable(exc) from exc
                continue
            if response.status_code in RETRY_STATUSES and not last:
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _unreachable(self, exc: httpx.HTTPError) -> NnqError:
        url = self.base_url
        if isinstance(exc, httpx.ConnectError):
            return ApiUnreachable(f"cannot reach the nnq API at {url} ({exc}); start it with "
                                  "`nnq up` or set NNQ_API_URL / --api", url)
        if isinstance(exc, httpx.TimeoutException):
            return ApiUnreachable(f"the nnq API at {url} did not answer in time", url)
        return ApiUnreachable(f"request to {url} failed: {exc}", url)

    def get(self, path: str, **params: Any) -> Any:
        clean = {key: value for key, value in params.items() if value is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs).json()

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs).json()


def _error(response: httpx.Response) -> NnqError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_from_response(response.status_code, body, response.text,
                               response.reason_phrase)
