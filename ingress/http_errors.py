"""Every error leaves as `{"error": {"type", "code", "message", "param", "field"[, "decline_code"]}}`
with its HTTP status (ingress/responses.py ErrorObject), and `Retry-After` where waiting helps."""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import ValidationError

from ingress.responses import ApiError, ErrorObject
from paystream.domain.errors import PaymentError

log = logging.getLogger("paystream.ingress")

STATUS_BY_TYPE = {
    "invalid_request_error": 422,
    "not_found_error": 404,
    "state_error": 409,
    "card_error": 402,
    # The provider could not be reached: a temporary outage like any other, and repeating the request
    # with its Idempotency-Key is what settles it (a failed start is started again, a charge looked up).
    "provider_error": 503,
    "authentication_error": 401,
    "permission_error": 403,
    "idempotency_error": 409,
    "unavailable_error": 503,
    "rate_limit_error": 429,
}
STATUS_BY_CODE = {"amount_mismatch": 422, "invalid_json": 400, "body_too_large": 413,
                  # Stripe's statuses for a refund over what is left: a 400 naming `amount`.
                  "amount_too_large": 400, "charge_already_refunded": 400}
#: Seconds a client should wait before trying again, for the statuses where trying again helps.
RETRY_AFTER_S = {503: 1}


def error_response(type_: str, code: str, message: str, field: str | None = None, status: int | None = None,
                   headers: dict | None = None, decline_code: str | None = None) -> web.Response:
    status = status or STATUS_BY_CODE.get(code) or STATUS_BY_TYPE.get(type_, 400)
    body = ApiError(error=ErrorObject.of(type_, code, message, field, decline_code))
    headers = dict(headers or {})
    if status in RETRY_AFTER_S:
        headers.setdefault("Retry-After", str(RETRY_AFTER_S[status]))
    return web.json_response(body.model_dump(mode="json", exclude_none=False), status=status, headers=headers)


def payment_error_response(error: PaymentError | dict) -> web.Response:
    data = error.as_dict() if isinstance(error, PaymentError) else error
    return error_response(data["type"], data["code"], data["message"], data.get("field"),
                          decline_code=data.get("decline_code"))


def validation_error_response(exc: ValidationError) -> web.Response:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    kind = first["type"]
    if kind == "json_invalid":
        # Malformed or empty JSON is a 400 of its own, not a field error.
        return error_response("invalid_request_error", "invalid_json", f"body is not valid JSON: {first['msg']}")
    if kind == "missing":
        code, message = "missing_field", f"{field} is required"
    elif kind == "extra_forbidden":
        code, message = "unexpected_field", f"{field} is not a field of this request"
    elif kind.endswith("_type") and field in {"amount", "currency"}:
        code, message = "invalid_type", f'{field} must be a string such as "12.34" or "EUR", not a number'
    elif kind.endswith("_type"):
        code, message = "invalid_type", f"{field}: {first['msg']}"
    else:
        code, message = "invalid_value", f"{field}: {first['msg']}"
    return error_response("invalid_request_error", code, message, field)


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PaymentError as exc:
        return payment_error_response(exc)
    except ValidationError as exc:
        return validation_error_response(exc)
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response("invalid_request_error", "body_too_large", exc.text or "request body is too large")
    except web.HTTPException as exc:
        if exc.status >= 400:
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return error_response("invalid_request_error", exc.reason.lower().replace(" ", "_"),
                                  exc.reason, status=exc.status, headers=headers)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response("api_error", "internal_error", "internal error; the request may be retried "
                              "with the same Idempotency-Key", status=500)
