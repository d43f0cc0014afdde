"""One complete payment against the running system, step by step, as a client makes it, and a refund of
part of it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import aiohttp

from devstack.settings import DevSettings


async def run_demo(settings: DevSettings, api_key: str, say: Callable[[str], None], provider: str = "stripe") -> dict:
    """Start, pay, read the receipt of and refund part of one payment, through `provider` (stripe or paypal)."""
    base = f"http://{settings.ingress_host}:{settings.ingress_port}"
    user = {"user_id": f"demo-{uuid.uuid4().hex[:8]}", "email_id": "demo.user@example.com",
            "timestamp": datetime.now(UTC).isoformat(), "payment_type": "credit"}
    auth = {"Authorization": f"Bearer {api_key}"}
    async with aiohttp.ClientSession() as http:
        async def call(method: str, path: str, body: dict | None = None, **kwargs) -> tuple[int, dict, Mapping]:
            async with http.request(method, base + path, json=body, headers={**auth, **kwargs.pop("headers", {})},
                                    **kwargs) as resp:
                # A copy that keeps header names case-insensitive: the balancer sends them in lower case.
                return resp.status, await resp.json(), resp.headers.copy()

        say(f"1. startPayment for {user['user_id']}: 42.00 EUR, provider {provider}")
        status, started, _ = await call("POST", "/v1/startPayment", {**user, "amount": "42.00", "currency": "EUR",
                                                                     "provider": provider},
                                        headers={"Idempotency-Key": uuid.uuid4().hex})
        say(f"   {status} {json.dumps(started)}")
        if status != 201:
            raise RuntimeError("startPayment failed")

        if provider == "paypal":
            say(f"2. the payer approves the order at its approval link ({started['client_secret']}); "
                "here, the stand-in's test-only approval page")
            async with http.post(f"{settings.paypal_sandbox_base}/_test/orders/{started['transaction_id']}/approve",
                                 json={}) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"the stand-in did not approve the order: {await resp.text()}")
            method = "paypal"  # the approval is the payment method
        else:
            say("2. the client enters a test card with the provider and gets a payment method")
            async with http.post(f"{settings.stripe_api_base}/v1/payment_methods", data={
                "type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12",
                "card[exp_year]": str(datetime.now(UTC).year + 2), "card[cvc]": "123",
            }, headers={"Authorization": f"Bearer {settings.stripe_api_key.get_secret_value()}"}) as resp:
                method = (await resp.json())["id"]
        say(f"   payment_method {method}")

        say("3. postPayment")
        status, receipt, _ = await call("POST", "/v1/postPayment", {
            **user, "transaction_id": started["transaction_id"], "amount": "42.00", "currency": "EUR",
            "payment_method": method,
        }, headers={"Idempotency-Key": uuid.uuid4().hex})
        say(f"   {status} {json.dumps(receipt)}")
        if status != 201:
            raise RuntimeError("postPayment failed")

        for attempt in (1, 2):
            status, body, headers = await call(
                "GET", "/v1/getReceipt", params={"receipt_id": receipt["receipt_id"], "user_id": user["user_id"]})
            say(f"4.{attempt} getReceipt: {status}, X-Cache: {headers.get('X-Cache')}")

        say(f"5. refund 12.00 of the 42.00 EUR (at {provider})")
        status, refund, headers = await call("POST", "/v1/refunds", {
            "payment_id": started["payment_id"], "user_id": user["user_id"], "amount": "12.00",
            "reason": "requested_by_customer"}, headers={"Idempotency-Key": uuid.uuid4().hex})
        if status == 202:  # pending at the provider: its Location says when it is done
            location, wait_s = headers["Location"], float(headers.get("Retry-After", 1))
            while status in (200, 202) and refund.get("status") == "pending":
                await asyncio.sleep(wait_s)
                status, refund, _ = await call("GET", location)
        say(f"   {status} {json.dumps(refund)}")
        if status not in (200, 201):
            raise RuntimeError("the refund failed")
        status, refunds, _ = await call("GET", f"/v1/payments/{started['payment_id']}/refunds",
                                        params={"user_id": user["user_id"]})
        say(f"6. the payment's refunds: {status}, " + ", ".join(f"{r['id']} {r['amount']} {r['currency']} {r['status']}"
                                                              for r in refunds.get("data", [])))
        return receipt
