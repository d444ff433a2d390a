"""gunicorn's settings for the API, used as
``gunicorn -c python:service.gunicorn_conf 'service:create_app()'`` (bind address, workers
and timeout stay on the command line).

gunicorn refuses a request it cannot parse (a request line over ``limit_request_line``,
malformed or oversized headers, a bad chunk size) itself, before the app sees it, and writes
an HTML page for it. Here each worker writes those refusals in the API's JSON error shape
instead, with gunicorn's own status and message, so no client of nnq ever gets HTML.
"""

from __future__ import annotations

import json

from gunicorn import util

# gunicorn's largest allowed request line (its default is 4094): long query strings reach the
# app, which names the parameter that is too long; longer lines get gunicorn's JSON 400.
limit_request_line = 8190


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` with the API's error shape as the body."""
    from service.errors import error_document

    code = reason.lower().replace(" ", "_") or "bad_request"
    body = json.dumps(error_document(code, mesg or reason)).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def post_worker_init(worker) -> None:
    """gunicorn hook, in each worker once it is set up: its refusals are written as JSON."""
    util.write_error = write_json_error
