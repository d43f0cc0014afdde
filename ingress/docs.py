"""/openapi.json and the documentation page at /docs (Swagger UI, whose files ship in the
swagger-ui-py package: the page loads nothing from the internet)."""

from __future__ import annotations

import json

from aiohttp import web
from swagger_ui import api_doc

from ingress.openapi import document


def add_docs(app: web.Application) -> None:
    body = json.dumps(document())

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    app.router.add_get("/openapi.json", openapi_json, name="openapi")
    # swagger-ui-py puts the page's document URL under its own prefix: /docs/openapi.json.
    app.router.add_get("/docs/openapi.json", openapi_json)
    # validatorUrl null: Swagger UI would otherwise send the document to an online validator.
    api_doc(app, config_rel_url="/openapi.json", url_prefix="/docs", title="paystream API",
            parameters={"validatorUrl": "null", "persistAuthorization": "true"})
