"""/openapi.json: OpenAPI 3.1 generated from the same pydantic models that validate requests and
shape answers, and from the table of operations that routes them (ingress/routes.py OPERATIONS).

pydantic writes JSON Schema 2020-12, which is OpenAPI 3.1's own schema dialect, so the
models go into `components.schemas` unchanged; this module only lays the operations out
around them (parameters, bodies, statuses, headers). Nothing here is written by hand
that the code could say instead.
"""

from __future__ import annotations

import copy
from functools import cache

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ingress.requests import PaymentPath, RefundPath
from ingress.responses import ApiError
from ingress.routes import OPERATIONS, POLL_AFTER_S, Operation
from paystream import __version__

REF = "#/components/schemas/{model}"

_HEADERS = {
    "Request-Id": {"description": "This request's id, as in paystream's logs.", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "string"}},
    "Location": {"description": "Where to poll for the outcome (`/v1/payments/{payment_id}?user_id=…`, or "
                                "`/v1/refunds/{refund_id}?user_id=…` for a refund).",
                 "schema": {"type": "string"}},
    "X-Cache": {"description": "`hit`: from the cache; `miss`: from a store replica.",
                "schema": {"type": "string", "enum": ["hit", "miss"]}},
}


def _plain(schema: dict) -> dict:
    """A parameter's schema: no titles, and `X | None` as just X (an absent parameter is the None)."""
    schema = {k: v for k, v in schema.items() if k != "title" and not (k == "default" and v is None)}
    options = schema.pop("anyOf", None)
    if options:
        schema = {**[o for o in options if o.get("type") != "null"][0], **schema}
    return schema


def _parameters(op: Operation) -> list[dict]:
    params = []
    for name in op.path_params:
        prop = next(m.model_json_schema()["properties"][name] for m in (PaymentPath, RefundPath)
                    if name in m.model_fields)
        params.append({"name": name, "in": "path", "required": True, "schema": _plain(prop)})
    if op.query is not None:
        schema = op.query.model_json_schema()
        for name, prop in schema["properties"].items():
            param = {"name": name, "in": "query", "required": name in schema.get("required", []),
                     "schema": _plain(prop)}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    if op.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "description": "Up to 255 printable characters, scoped to your account and this endpoint "
                                      "for 24 h: a repeat gets the first answer back (`Idempotent-Replayed: "
                                      "true`); another body is a 409.",
                       "schema": {"type": "string", "minLength": 1, "maxLength": 255}})
    return params


def _response(description: str, schema: dict | None, headers: tuple[str, ...]) -> dict:
    answer = {"description": description,
              "headers": {h: {**_HEADERS[h], "required": True} for h in ("Request-Id", *headers)}}
    if schema is not None:
        answer["content"] = {"application/json": {"schema": schema}}
    return answer


@cache
def _document() -> dict:
    models: list[tuple[type[BaseModel], str]] = [(ApiError, "serialization")]
    for op in OPERATIONS:
        if op.body is not None:
            models.append((op.body, "validation"))
        models += [(model, "serialization") for _, model in op.responses.values() if model is not None]
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    ref = {model: refs[(model, mode)] for model, mode in models}

    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        responses = {}
        for status, (description, model) in op.responses.items():
            headers = ("Location", "Retry-After") if status == 202 else ("X-Cache",) if op.path.endswith(
                "getReceipt") else ()
            responses[str(status)] = _response(description, ref[model] if model else None, headers)
        for status, description in sorted(op.errors.items()):
            headers = ("Retry-After",) if status in (429, 503) else ()
            responses[str(status)] = _response(description, ref[ApiError], headers)
        operation = {"operationId": op.operation_id, "summary": op.summary, "responses": responses}
        if op.aliases:
            operation["description"] = "Also served at " + ", ".join(f"`{a}`" for a in op.aliases) + \
                                       " (the design's path)."
        params = _parameters(op)
        if params:
            operation["parameters"] = params
        if op.body is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": ref[op.body]}}}
        if op.public:
            operation["security"] = []
        paths.setdefault(op.path, {})[op.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": "paystream API", "version": __version__,
                 "description": "Payments through a card provider: start, post, receipts. Amounts are decimal "
                                "strings in the currency's ISO 4217 digits. Every request but `/health` carries "
                                "`Authorization: Bearer <API key>`; a key belongs to one account, which sees "
                                f"only its own objects. A write answered 202 is polled at `Location` after "
                                f"`Retry-After` ({POLL_AFTER_S} s)."},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "`paystream apikey create --account NAME`"}},
        },
    }


def document() -> dict:
    """The OpenAPI document (a fresh copy: callers may change theirs)."""
    return copy.deepcopy(_document())
