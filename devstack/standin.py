"""A stand-in for a card provider with real-world latency and no throughput cap of its own.

It speaks the part of Stripe's HTTP API that paystream's Stripe connector uses
(PaymentIntents, SetupIntents, PaymentMethods, and the Charges they make),
keeps everything in memory, honours Idempotency-Key as Stripe does (the same
key answers the first response again), and waits a configurable latency before
each answer: by default uniformly 300-800 ms, what a published routing
benchmark quotes for a Stripe charge. Benchmarks use it to measure paystream
behind a provider that is slow per call but not a bottleneck (localstripe, the
functional sandbox, caps at about 50 payments a second here).

    python -m devstack.standin --port 28421 --latency-ms 300-800
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import secrets
import time

from aiohttp import web

#: Cards that decline at confirm, as on Stripe's and localstripe's test cards.
DECLINING = {"4000000000000341": "card_declined", "4000000000000002": "card_declined",
             "4000000000009995": "insufficient_funds"}
#: Payment methods that exist without being created, as on Stripe's test mode.
TEST_METHODS = {"pm_card_visa": "4242424242424242", "pm_card_chargeCustomerFail": "4000000000000341"}


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class Standin:
    def __init__(self, latency_ms: tuple[float, float], seed: int | None = None, sleep=asyncio.sleep) -> None:
        self.latency_ms = latency_ms
        #: How a call waits out its latency (a test passes its own to watch the calls overlap).
        self.sleep = sleep
        self.random = random.Random(seed)
        self.intents: dict[str, dict] = {}
        self.setup_intents: dict[str, dict] = {}
        self.methods: dict[str, str] = dict(TEST_METHODS)  # id -> card number
        self.charges: dict[str, dict] = {}
        self.replies: dict[str, tuple[int, dict]] = {}
        self.clock = itertools.count(int(time.time()))

    # --- plumbing -----------------------------------------------------------------
    @web.middleware
    async def behave(self, request: web.Request, handler) -> web.Response:
        """Latency first, then Idempotency-Key: a repeated key answers the first response again."""
        low, high = self.latency_ms
        if high > 0:
            await self.sleep(self.random.uniform(low, high) / 1000)
        if not request.headers.get("Authorization", "").startswith(("Bearer sk_", "Basic ")):
            return _error(401, "invalid_request_error", "api_key_missing", "Invalid API Key provided")
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        if key is not None and key in self.replies:
            status, body = self.replies[key]
            return web.Response(body=body, status=status, content_type="application/json",
                                headers={"Idempotent-Replayed": "true"})
        response = await handler(request)
        if key is not None and response.status < 500:
            self.replies[key] = (response.status, response.body)
        return response

    async def form(self, request: web.Request) -> dict:
        return dict(await request.post()) if request.method == "POST" else dict(request.query)

    # --- payment methods -------------------------------------------------------------
    async def create_method(self, request: web.Request) -> web.Response:
        form = await self.form(request)
        number = form.get("card[number]")
        if form.get("type") != "card" or not number:
            return _error(400, "invalid_request_error", "parameter_missing", "card[number] is required", "card")
        method_id = _id("pm")
        self.methods[method_id] = number
        return _json({"id": method_id, "object": "payment_method", "type": "card", "card": {"last4": number[-4:]}})

    # --- intents -------------------------------------------------------------------------
    async def create_intent(self, request: web.Request) -> web.Response:
        form = await self.form(request)
        try:
            amount = int(form["amount"])
        except (KeyError, ValueError):
            return _error(400, "invalid_request_error", "parameter_missing", "amount is required", "amount")
        if amount <= 0 or not form.get("currency"):
            return _error(400, "invalid_request_error", "parameter_invalid_integer", "invalid amount", "amount")
        intent_id = _id("pi")
        intent = {"id": intent_id, "object": "payment_intent", "amount": amount, "currency": form["currency"],
                  "status": "requires_payment_method", "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
                  "metadata": _metadata(form), "payment_method": None, "latest_charge": None,
                  "last_payment_error": None, "created": next(self.clock)}
        self.intents[intent_id] = intent
        if form.get("payment_method"):
            return self._attach(intent, form["payment_method"])
        return _json(intent)

    async def create_setup_intent(self, request: web.Request) -> web.Response:
        form = await self.form(request)
        seti_id = _id("seti")
        self.setup_intents[seti_id] = {"id": seti_id, "object": "setup_intent", "status": "requires_payment_method",
                                       "client_secret": f"{seti_id}_secret_{secrets.token_hex(8)}",
                                       "metadata": _metadata(form)}
        return _json(self.setup_intents[seti_id])

    async def update_intent(self, request: web.Request) -> web.Response:
        intent = self.intents.get(request.match_info["id"])
        if intent is None:
            return _missing("payment_intent")
        form = await self.form(request)
        if "payment_method" in form:
            return self._attach(intent, form["payment_method"])
        return _json(intent)

    def _attach(self, intent: dict, method: str) -> web.Response:
        if method not in self.methods:
            return _error(400, "invalid_request_error", "resource_missing", f"No such PaymentMethod: '{method}'",
                          "payment_method")
        if intent["status"] == "succeeded":
            return _error(400, "invalid_request_error", "payment_intent_unexpected_state",
                          "This PaymentIntent has already succeeded.")
        intent.update(payment_method=method, status="requires_confirmation")
        return _json(intent)

    async def confirm_intent(self, request: web.Request) -> web.Response:
        intent = self.intents.get(request.match_info["id"])
        if intent is None:
            return _missing("payment_intent")
        if intent["status"] != "requires_confirmation":
            return _error(400, "invalid_request_error", "payment_intent_unexpected_state",
                          f"This PaymentIntent's status is {intent['status']}.")
        decline = DECLINING.get(self.methods[intent["payment_method"]])
        if decline:
            error = {"type": "card_error", "code": "card_declined", "decline_code": decline,
                     "message": "Your card was declined.", "payment_intent": intent["id"]}
            intent.update(status="requires_payment_method", last_payment_error=error)
            return web.json_response({"error": error}, status=402)
        charge_id = _id("ch")
        self.charges[charge_id] = {"id": charge_id, "object": "charge", "amount": intent["amount"],
                                   "currency": intent["currency"], "payment_intent": intent["id"],
                                   "status": "succeeded", "created": next(self.clock)}
        intent.update(status="succeeded", latest_charge=charge_id, last_payment_error=None)
        return _json(intent)

    async def get_intent(self, request: web.Request) -> web.Response:
        intent = self.intents.get(request.match_info["id"])
        return _json(intent) if intent is not None else _missing("payment_intent")

    async def list_intents(self, request: web.Request) -> web.Response:
        return _listing(self.intents.values(), await self.form(request))

    async def list_charges(self, request: web.Request) -> web.Response:
        form = await self.form(request)
        charges = [c for c in self.charges.values()
                   if "payment_intent" not in form or c["payment_intent"] == form["payment_intent"]]
        return _listing(charges, form)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.behave])
        app.router.add_post("/v1/payment_methods", self.create_method)
        app.router.add_post("/v1/payment_intents", self.create_intent)
        app.router.add_get("/v1/payment_intents", self.list_intents)
        app.router.add_get("/v1/payment_intents/{id}", self.get_intent)
        app.router.add_post("/v1/payment_intents/{id}", self.update_intent)
        app.router.add_post("/v1/payment_intents/{id}/confirm", self.confirm_intent)
        app.router.add_post("/v1/setup_intents", self.create_setup_intent)
        app.router.add_get("/v1/charges", self.list_charges)
        return app


def _metadata(form: dict) -> dict:
    return {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[") and k.endswith("]")}


def _listing(items, form: dict) -> web.Response:
    limit = min(int(form.get("limit", 10)), 100)  # Stripe's cap
    newest = sorted(items, key=lambda item: item["created"], reverse=True)
    return _json({"object": "list", "data": newest[:limit], "has_more": len(newest) > limit})


def _json(body: dict) -> web.Response:
    return web.json_response(body)


def _error(status: int, type_: str, code: str, message: str, param: str | None = None) -> web.Response:
    return web.json_response({"error": {"type": type_, "code": code, "message": message, "param": param}},
                             status=status)


def _missing(what: str) -> web.Response:
    return _error(404, "invalid_request_error", "resource_missing", f"No such {what}")


def parse_latency(text: str) -> tuple[float, float]:
    """'300-800' -> (300, 800); '0' -> no latency."""
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8421)
    parser.add_argument("--latency-ms", type=parse_latency, default=(300.0, 800.0),
                        help="uniform latency range per request, e.g. 300-800 (default) or 0")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    web.run_app(Standin(args.latency_ms, args.seed).app(), host=args.host, port=args.port,
                access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()
