"""A small HTTP client for the nnq API, used by the CLI (httpx only, nothing of the server).

It turns every failure a user can cause or meet (API down, a 4xx with the service's error
shape `{"error": {"code", "message", "details"}}`) into one `ApiError` with a readable message,
so the CLI can print it instead of a traceback.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:5000"
API_PREFIX = "/api/v1"
TIMEOUT_SECONDS = 60.0


class ApiError(Exception):
    """A request failed; `str(err)` is what the user should read."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


def format_error(response: httpx.Response) -> ApiError:
    """Read the service's JSON error shape; fall back to the raw body for anything else."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict) or not error:
        body = response.text.strip()[:500] or response.reason_phrase
        return ApiError(f"HTTP {response.status_code}: {body}", response.status_code)
    code = error.get("code") or str(response.status_code)
    lines = [f"{code}: {error.get('message', '')}".rstrip(": ")]
    lines.extend(f"  {line}" for line in _detail_lines(error.get("details")))
    return ApiError("\n".join(lines), response.status_code, code)


def items(payload: Any) -> list:
    """The rows of a list response, whether bare or wrapped in {"items": [...]}."""
    if isinstance(payload, list):
        return payload
    for key in ("items", "jobs", "models", "metrics", "data"):
        if isinstance(payload.get(key), list):
            return payload[key]
    return []


def _detail_lines(details: Any) -> list[str]:
    if not details:
        return []
    if isinstance(details, dict):
        return [f"{key}: {value}" for key, value in details.items()]
    if isinstance(details, list):
        lines = []
        for item in details:
            if isinstance(item, dict) and ("field" in item or "loc" in item):
                where = item.get("field") or ".".join(str(p) for p in item.get("loc", []))
                lines.append(f"{where}: {item.get('message') or item.get('msg', '')}")
            else:
                lines.append(str(item))
        return lines
    return [str(details)]


class Api:
    """Calls `/api/v1/...` on one base URL with the optional bearer token."""

    def __init__(self, base_url: str | None = None, token: str | None = None):
        self.base_url = (base_url or os.environ.get("NNQ_API_URL") or DEFAULT_API_URL).rstrip("/")
        token = token if token is not None else os.environ.get("NNQ_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base_url + API_PREFIX, headers=headers,
                                 timeout=TIMEOUT_SECONDS)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(f"cannot reach the nnq API at {self.base_url} ({exc}); "
                           "start it with `nnq up` or set NNQ_API_URL / --api") from exc
        except httpx.TimeoutException as exc:
            raise ApiError(f"the nnq API at {self.base_url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ApiError(f"request to {self.base_url} failed: {exc}") from exc
        if response.status_code >= 400:
            raise format_error(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        clean = {key: value for key, value in params.items() if value is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs).json()
