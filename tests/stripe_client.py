"""A tiny synchronous Stripe HTTP client for tests: what a provider's web client does."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request


class StripeError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.error = body.get("error", {})


class SandboxClient:
    def __init__(self, base: str, key: str) -> None:
        self.base = base.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, *, json_body: dict | None = None, **params) -> dict:
        data = urllib.parse.urlencode(params).encode() if params and method != "GET" else None
        headers = {"Authorization": f"Bearer {self.key}"}
        if json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        url = f"{self.base}{path}"
        if params and method == "GET":
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read()
                return json.loads(body) if body else {}  # the sandbox's /_config calls answer nothing
        except urllib.error.HTTPError as exc:
            raise StripeError(exc.code, json.loads(exc.read() or b"{}")) from None

    def create_intent(self, amount: int, currency: str, **metadata: str) -> dict:
        meta = {f"metadata[{k}]": v for k, v in metadata.items()}
        return self.call("POST", "/v1/payment_intents", amount=amount, currency=currency, **meta)

    def attach_and_confirm(self, intent_id: str, payment_method: str) -> dict:
        self.call("POST", f"/v1/payment_intents/{intent_id}", payment_method=payment_method)
        return self.call("POST", f"/v1/payment_intents/{intent_id}/confirm")

    def charges_for(self, intent_id: str) -> list[dict]:
        """The intent's charges, from the intent itself (by id: listing every charge costs the
        sandbox seconds per thousand, and grows with every run)."""
        return self.intent(intent_id)["charges"]["data"]

    def charges_of_payments(self, payment_ids: list[str]) -> dict[str, list[dict]]:
        """Every charge of each payment: on any provider object carrying its id in the metadata (the session's
        intent, a fresh intent of a later attempt, ...), not only on the ids paystream returned. Asked of the
        sandbox's own search (devstack/stack/stripe_sandbox.py), a few hundred ids at a time."""
        found: dict[str, list[dict]] = {}
        for i in range(0, len(payment_ids), 200):
            query = urllib.parse.urlencode([("payment_id", pid) for pid in payment_ids[i:i + 200]])
            with urllib.request.urlopen(f"{self.base}/_config/charges?{query}", timeout=30) as response:
                found |= {pid: row["charges"] for pid, row in json.load(response).items()}
        return found

    def succeeded_charges(self, payment_id: str) -> list[dict]:
        """The succeeded charges of one payment, over every provider object carrying its id."""
        return [c for c in self.charges_of_payments([payment_id])[payment_id] if c["status"] == "succeeded"]

    def intent(self, intent_id: str) -> dict:
        return self.call("GET", f"/v1/payment_intents/{intent_id}")

    def intent_count(self) -> int:
        return self.call("GET", "/v1/payment_intents", limit=1)["total_count"]

    def hold_answers(self, path_suffix: str, hold_s: float, times: int = 1) -> dict:
        """The sandbox's fault hook (devstack): the next matching POST takes effect, its answer is held."""
        return self.call("POST", "/_config/faults", json_body={"path_suffix": path_suffix, "hold_s": hold_s,
                                                               "times": times})

    def clear_faults(self) -> dict:
        return self.call("DELETE", "/_config/faults")
