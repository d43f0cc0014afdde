"""The API against its own contract: /openapi.json validates, the documentation page loads nothing from
the internet, and schemathesis throws well over a thousand generated requests at the live ingress
(every operation, valid and invalid data, linked calls): no server error, no answer outside the
schema, and no request the ingress refused ever reaches Kafka."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from openapi_spec_validator import validate

from tests.conftest import LONGEST_WAIT_S, ROOT, paystream
from tests.kafka_probe import end_offsets, read_raw_headers_since

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
#: Statuses the ingress answers itself, before anything is produced (a 409 only for a reused key).
REFUSED = {400, 401, 404, 405, 413, 422, 429}
MIN_REQUESTS = 1000


@pytest.fixture(scope="module")
def fuzz_key(pipeline) -> str:
    """An account of its own, with a limit the fuzzer never reaches (limits are tested elsewhere)."""
    made = paystream("apikey", "create", "--account", "fuzz", "--rate-limit", "100000/second")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


async def test_the_openapi_document_is_valid_and_covers_every_route(pipeline):
    async with aiohttp.ClientSession() as http, http.get(pipeline["ingress"]["address"] + "/openapi.json") as resp:
        assert resp.status == 200
        document = await resp.json()
    validate(document)  # OpenAPI 3.1, with JSON Schema 2020-12 inside
    assert document["openapi"] == "3.1.0"
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert operations == {("POST", "/v1/startPayment"), ("POST", "/v1/postPayment"), ("GET", "/v1/getReceipt"),
                          ("POST", "/v1/getReceipt"), ("GET", "/v1/payments/{payment_id}"),
                          ("GET", "/v1/payments"), ("GET", "/v1/receipts"), ("POST", "/v1/user_tokens"),
                          ("POST", "/v1/refunds"), ("GET", "/v1/refunds/{refund_id}"),
                          ("GET", "/v1/payments/{payment_id}/refunds"), ("GET", "/health")}
    # The answers are the core's own models.
    assert {"Receipt", "PaymentView", "ErrorObject"} <= set(document["components"]["schemas"])


async def test_the_documentation_page_serves_its_own_assets(pipeline):
    base = pipeline["ingress"]["address"]
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/docs") as resp:
            assert resp.status == 200
            page = await resp.text()
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert assets and all(a.startswith("/docs/static/") for a in assets), assets
        # No online validator; the document from paystream itself.
        assert "validatorUrl: null" in page and 'url: "/docs/openapi.json"' in page
        assets.append("/docs/openapi.json")
        for asset in assets:
            async with http.get(base + asset) as resp:
                assert resp.status == 200, asset


def test_schemathesis_finds_no_server_error_no_schema_violation_and_nothing_refused_reaches_kafka(
        pipeline, stack, settings, fuzz_key, tmp_path):
    bootstrap = stack["kafka"]["address"]
    before = end_offsets(bootstrap, settings.topics.commands)
    har = tmp_path / "schemathesis.har"
    run = subprocess.run(
        [str(SCHEMATHESIS), "run", pipeline["ingress"]["address"] + "/openapi.json",
         "--header", f"Authorization: Bearer {fuzz_key}", "--mode", "all", "--max-examples", "60",
         # Every check but one: the schema is deliberately looser than the domain about money (the amount's
         # digits per currency, amount and currency together), which answers those with a 422 of its own.
         "--checks", "all", "--exclude-checks", "positive_data_acceptance",
         # A write may rightly take the whole reply wait (PAYSTREAM_REPLY_TIMEOUT_S) before its 202;
         # "all" checks answers against 10 s, which would call that a failure. Only a hang is one here:
         # speed is the benchmarks' business.
         "--request-timeout", str(settings.reply_timeout_s + 20),
         "--max-response-time", str(settings.reply_timeout_s + 20),
         "--seed", "1", "--no-shrink", "--report", "har", "--report-har-path", str(har)],
        cwd=ROOT, capture_output=True, text=True, timeout=LONGEST_WAIT_S)
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary

    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(e["response"]["status"] for e in entries)
    per_operation = Counter((e["request"]["method"], _documented(e["request"]["url"])) for e in entries)
    report = {"requests": len(entries), "statuses": dict(sorted(statuses.items())),
              "per_operation": {f"{m} {p}": n for (m, p), n in sorted(per_operation.items()) if p}}
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "schemathesis.json").write_text(json.dumps(report, indent=2))

    assert len(entries) >= MIN_REQUESTS, report
    assert not [s for s in statuses if s >= 500], report
    for operation in ("POST /v1/startPayment", "POST /v1/postPayment", "GET /v1/getReceipt", "POST /v1/getReceipt",
                      "GET /v1/payments/{payment_id}", "GET /v1/payments", "GET /v1/receipts",
                      "POST /v1/user_tokens", "POST /v1/refunds", "GET /v1/refunds/{refund_id}",
                      "GET /v1/payments/{payment_id}/refunds"):
        assert report["per_operation"].get(operation, 0) >= 20, (operation, report)
    assert report["per_operation"].get("GET /health", 0) >= 1, report  # it takes no parameter to vary

    # Every command the run produced answers a request that went through; none answers a refused one.
    refused = {_request_id(e) for e in entries if e["response"]["status"] in REFUSED or _reused_key(e)}
    through = {_request_id(e) for e in entries if _request_id(e) not in refused}
    produced = [headers.get("correlation_id") for headers in
                read_raw_headers_since(bootstrap, settings.topics.commands, before)]
    assert produced, "the run made no payment at all: the fuzzing never got past validation"
    assert not {f"req_{c}" for c in produced} & refused
    assert {f"req_{c}" for c in produced} <= through


def _documented(url: str) -> str | None:
    path = "/" + url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
    if re.fullmatch(r"/v1/payments/[^/]+", path):
        return "/v1/payments/{payment_id}"
    if re.fullmatch(r"/v1/payments/[^/]+/refunds", path):
        return "/v1/payments/{payment_id}/refunds"
    if re.fullmatch(r"/v1/refunds/[^/]+", path):
        return "/v1/refunds/{refund_id}"
    return path


def _request_id(entry: dict) -> str:
    return next(h["value"] for h in entry["response"]["headers"] if h["name"].lower() == "request-id")


def _reused_key(entry: dict) -> bool:
    return entry["response"]["status"] == 409 and "idempotency_error" in entry["response"]["content"].get("text", "")
