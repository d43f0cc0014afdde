"""`paystream demo` as a new user runs it: through the balancer (HAProxy, which sends header names in
lower case), the second read of the receipt is served from the cache and says so; then it refunds part
of the payment at the payment's provider (Stripe's sandbox or the PayPal stand-in)."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import paystream


def test_the_demo_through_the_balancer_reads_its_receipt_from_the_cache_the_second_time(stack, pipeline, settings):
    # The demo calls the public address, which is the balancer's.
    assert stack["balancer"]["address"] == f"http://{settings.ingress_host}:{settings.ingress_port}"
    demo = paystream("dev", "demo", timeout=120)
    assert demo.returncode == 0, demo.stderr
    reads = dict(re.findall(r"^4\.(\d) getReceipt: 200, X-Cache: (\S+)$", demo.stdout, re.M))
    # The first read may be the cache's too (postPayment fills it); the second always is.
    assert reads.get("1") in ("hit", "miss") and reads.get("2") == "hit", demo.stdout


def test_the_demo_through_paypal_pays_an_approved_order(stack, pipeline):
    demo = paystream("dev", "demo", "--provider", "paypal", timeout=120)
    assert demo.returncode == 0, demo.stderr
    started = re.search(r'^   201 (\{.*"provider": "paypal".*\})$', demo.stdout, re.M)
    assert started is not None, demo.stdout  # an order, with its approval link as the client secret
    assert re.search(r"^   201 \{.*\"status\": \"succeeded\"", demo.stdout, re.M), demo.stdout
    assert re.search(r"^4\.2 getReceipt: 200, X-Cache: hit$", demo.stdout, re.M), demo.stdout


@pytest.mark.parametrize("provider", ["stripe", "paypal"])
def test_the_demo_refunds_part_of_its_payment_at_its_provider(stack, pipeline, provider):
    demo = paystream("dev", "demo", "--provider", provider, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert f"5. refund 12.00 of the 42.00 EUR (at {provider})" in demo.stdout, demo.stdout
    refund = re.search(r'^   20[01] (\{"schema_version": 1, "object": "refund".*\})$', demo.stdout, re.M)
    assert refund is not None, demo.stdout
    body = json.loads(refund.group(1))
    assert (body["amount"], body["currency"], body["status"], body["reason"]) == (
        "12.00", "EUR", "succeeded", "requested_by_customer"), body
    assert re.search(rf"^6\. the payment's refunds: 200, {body['id']} 12\.00 EUR succeeded$", demo.stdout, re.M), \
        demo.stdout
