"""The worker's and sinks' own HTTP pages: /ready/ and /metrics for anyone who can reach the port,
everything else (table queries) only with the internal bearer token."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from faust.web import Request, Response, View

from paystream.settings import Settings

Handler = Callable[[View, Request], Awaitable[Response]]


def internal(settings: Settings) -> Callable[[Handler], Handler]:
    """Decorate a View method so it answers 401 without `Authorization: Bearer <internal token>`."""
    token = settings.internal_token.get_secret_value().encode()

    def decorate(method: Handler) -> Handler:
        async def guarded(view: View, request: Request, *args, **kwargs) -> Response:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if not token or scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token):
                return view.json({"error": {"type": "authentication_error", "code": "invalid_internal_token",
                                            "message": "internal page: send `Authorization: Bearer <internal "
                                                       "token>`", "field": None}}, status=401)
            return await method(view, request, *args, **kwargs)

        return guarded

    return decorate
