"""`paystream demo` as a new user runs it: through the balancer (HAProxy, which sends header names in
lower case), the second read of the receipt is served from the cache and says so."""

from __future__ import annotations

import re

from tests.conftest import paystream


def test_the_demo_through_the_balancer_reads_its_receipt_from_the_cache_the_second_time(stack, pipeline, settings):
    # The demo calls the public address, which is the balancer's.
    assert stack["balancer"]["address"] == f"http://{settings.ingress_host}:{settings.ingress_port}"
    demo = paystream("dev", "demo", timeout=120)
    assert demo.returncode == 0, demo.stderr
    reads = dict(re.findall(r"^4\.(\d) getReceipt: 200, X-Cache: (\S+)$", demo.stdout, re.M))
    # The first read may be the cache's too (postPayment fills it); the second always is.
    assert reads.get("1") in ("hit", "miss") and reads.get("2") == "hit", demo.stdout
