"""HAProxy's own answers, in the API's error shape (ingress/http_errors.py).

When no ingress instance can take a request, or the one that took it fails or times out before
answering, HAProxy answers by itself. Its default pages are HTML, which a client of a JSON API
cannot read; these are JSON with a machine-readable code and `Retry-After`. The dev stack's
balancer writes them next to its configuration; docker/haproxy/errors/ holds the same files for
the compose profile (a devstack test keeps them equal).

A request an instance dropped half-way (HAProxy's 502) or did not answer in time (504) may have
been carried out: both are answered as a temporary unavailability (503) saying to repeat it with
the same Idempotency-Key, which is what makes that repeat safe.
"""

from __future__ import annotations

import json
from http import HTTPStatus

RETRY_AFTER_S = 1

#: HAProxy's status -> (the status answered, error type, code, message)
PAGES: dict[int, tuple[int, str, str, str]] = {
    400: (400, "invalid_request_error", "bad_request", "the request could not be read as HTTP"),
    408: (408, "invalid_request_error", "request_timeout", "the request was not received in time"),
    502: (503, "unavailable_error", "ingress_failed",
          "the instance handling this request failed before answering: repeat it with the same Idempotency-Key"),
    503: (503, "unavailable_error", "no_ingress_available",
          "no ingress instance can take this request right now (every one busy, or none in rotation): "
          "retry after Retry-After seconds with the same Idempotency-Key"),
    504: (503, "unavailable_error", "ingress_timeout",
          "the instance handling this request did not answer in time: repeat it with the same Idempotency-Key"),
}


def page(haproxy_status: int) -> bytes:
    """The whole HTTP answer HAProxy sends in place of its own page for `haproxy_status`."""
    status, type_, code, message = PAGES[haproxy_status]
    body = json.dumps({"error": {"type": type_, "code": code, "message": message, "param": None, "field": None,
                                 "decline_code": None}}).encode()
    headers = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json",
               "Cache-Control: no-cache", f"Content-Length: {len(body)}"]
    if status in (408, 503):
        headers.append(f"Retry-After: {RETRY_AFTER_S}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def file_name(haproxy_status: int) -> str:
    return f"{haproxy_status}.http"
