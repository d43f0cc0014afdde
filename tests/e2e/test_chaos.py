"""The short chaos run of `make test`: payments (through Stripe and PayPal) and their refunds (all, part
then the rest, three at once of the same payment) from retrying clients while the worker, the analytics,
the sinks and the ingress are SIGKILLed, a Couchbase node is failed over and the store is wiped; every
bad figure must be 0: the reconciliation against the providers' own records (charges; refunds: none made
twice, none over what was captured, none told and not made, every one terminal), the reads back
(statuses, and receipts with their e-mails), and what the clients met on the way (no 5xx but 503s, no 404
for a payment they had been told about)."""

from __future__ import annotations

import json

from devstack.chaos.faults import SHORT
from devstack.chaos.run import BAD
from tests.conftest import LONGEST_WAIT_S, ROOT, paystream


def test_short_chaos_run_loses_and_doubles_nothing(pipeline):
    result = paystream("chaos", "--short", "--json", timeout=LONGEST_WAIT_S)
    report = json.loads(result.stdout)
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "chaos-short.json").write_text(json.dumps(report, indent=2))

    assert report["faults_injected"] == len(SHORT)
    assert report["payments"] > 50
    # Refunds ran through the faults, some of a payment at once, and the PayPal stand-in took payments too.
    assert report["refunds_succeeded"] > 20 and report["payments_refunded_at_once"] > 5
    assert report["paypal_payments"] > 5
    assert {name: report[name] for name in BAD} == {name: 0 for name in BAD}, report["examples"]
    assert all(f["recovered_s"] is not None for f in report["faults"])
    assert result.returncode == 0, result.stderr[-3000:]
