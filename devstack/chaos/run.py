"""`paystream chaos`: payments from retrying clients while every process and service fails in turn,
then a reconciliation against the providers' own records.

The mix: payments through the Stripe sandbox and, one in `paypal_every`, through the PayPal stand-in;
each receipted payment then refunded in one of four ways by its index: all of it; part, then the rest;
three refunds at once (two parts and the rest) whose sum is more than the payment; none. The refunds
run while the faults hit (the worker killed among them) and are counted at the end from the providers'
records (devstack/chaos/ledgers.py): no refund made twice, no payment refunded over what it captured,
every refund a client was told about made at the provider or ended failed/canceled, every one terminal.

Bounded: payments at a fixed rate only while faults are being injected (and a
few seconds after), each client with its own deadline, every fault's recovery
waited for at most `recovery_timeout_s`. Loopback only: the local stack's ports
and recorded pids.

A fault has recovered when every service and pipeline process answers its
probe and a canary payment completes and reads back; after a store wipe, also
when every payment completed before it reads back again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import aiohttp

from devstack.chaos.client import REFUND_FINAL, Outcome, RefundOutcome, RetryingClient
from devstack.chaos.faults import Faults, Injected
from devstack.chaos.ledgers import HOLDING, Ledger, paypal_ledgers, stripe_ledgers
from devstack.settings import DevSettings
from paystream import apikeys, bootstrap

#: The account of the run's own API key, whose limit no run reaches (the figures are paystream's, not
#: the rate limiter's refusals); revoked when the run ends.
CHAOS_ACCOUNT = "chaos"
CHAOS_RATE_LIMIT = "1000000/second"

#: Figures that must be 0. The last two are what clients met on the way even when they retried past
#: it: a 5xx other than a 503 (an outage is a clear 503 with Retry-After, never a 500 or a 502: graceful
#: degradation), and a 404 for a payment they had been told about (read-your-writes).
BAD = ("double_charges", "charged_not_receipted", "receipted_not_charged", "unresolved", "failed", "rejected",
       "unreadable_statuses", "unreadable_receipts", "faults_not_recovered", "answered_5xx",
       "answered_404_after_told", "double_refunds", "over_refunds", "lost_refunds", "refunds_not_terminal",
       "refunds_misreported", "refunds_untold", "refunds_unresolved", "refunds_rejected")
#: The refunds of a receipted payment of 10.00, by its index: all of it; part then the rest; three at
#: once (together more than the payment: the worker must refuse what is no longer there); none.
REFUND_MIX = ((None,), ("2.50", None), (("3.00", "4.00", None),), ())


@dataclass
class Plan:
    faults: list[str]
    rate: float = 4.0  # payments started per second while faults run
    spacing_s: float = 10.0  # load between one fault's recovery and the next fault
    warmup_s: float = 5.0
    hold_s: float = 10.0  # how long a failed-over node stays out
    tail_s: float = 5.0
    recovery_timeout_s: float = 180.0
    client_deadline_s: float = 180.0
    max_payments: int = 3000
    #: One payment in this many goes through PayPal (0: none). The stand-in keeps its records in memory,
    #: so a run that restarts the whole stack (stop-start) pays through Stripe only.
    paypal_every: int = 4
    refunds: bool = True

    @property
    def paypal_share(self) -> int:
        return 0 if "stop-start" in self.faults else self.paypal_every


@dataclass
class Report:
    payments: int = 0
    faults_injected: int = 0
    double_charges: int = 0
    charged_not_receipted: int = 0
    receipted_not_charged: int = 0
    unresolved: int = 0
    failed: int = 0
    rejected: int = 0
    unreadable_statuses: int = 0
    unreadable_receipts: int = 0
    faults_not_recovered: int = 0
    answered_5xx: int = 0
    answered_404_after_told: int = 0
    paypal_payments: int = 0
    #: Refunds asked for, those the provider made (succeeded), those refused (400: nothing left for them),
    #: and the payments refunded several times at once.
    refunds: int = 0
    refunds_succeeded: int = 0
    refunds_refused: int = 0
    payments_refunded_at_once: int = 0
    double_refunds: int = 0
    over_refunds: int = 0
    lost_refunds: int = 0
    refunds_not_terminal: int = 0
    refunds_misreported: int = 0
    refunds_untold: int = 0
    refunds_unresolved: int = 0
    refunds_rejected: int = 0
    #: 503s the clients met (and retried past): what an outage is answered with, so not a bad figure.
    answered_503: int = 0
    seconds: float = 0.0
    faults: list[dict] = field(default_factory=list)
    client_answers: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(getattr(self, name) == 0 for name in BAD)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


class Chaos:
    def __init__(self, settings: DevSettings, api_key: str, plan: Plan, say=print) -> None:
        self.settings = settings
        self.plan = plan
        self.say = say
        self.faults = Faults(settings, say)
        self.client = RetryingClient(f"http://{settings.ingress_host}:{settings.ingress_port}", api_key,
                                     settings.stripe_api_base, settings.stripe_api_key.get_secret_value(),
                                     deadline_s=plan.client_deadline_s, paypal=settings.paypal_sandbox_base)
        self.tasks: list[asyncio.Task] = []
        self.done: list[Outcome] = []
        self.refunds: list[RefundOutcome] = []

    async def run(self) -> Report:
        started = time.monotonic()
        stop = asyncio.Event()
        load = asyncio.create_task(self._load(stop))
        injected: list[Injected] = []
        try:
            await asyncio.sleep(self.plan.warmup_s)
            for name in self.plan.faults:
                self.say(f"fault: {name} ...")
                fault = await asyncio.to_thread(self.faults.inject, name)
                fault.recovered_s = await self._recovery(fault)
                self.say(f"  {fault.detail}; recovered in "
                         + (f"{fault.recovered_s:.1f} s" if fault.recovered_s is not None else "(never)"))
                if name == "failover-couchbase":
                    await asyncio.sleep(self.plan.hold_s)
                    await asyncio.to_thread(self.faults.undo, fault)
                    await self._recovery(fault, since=time.monotonic())
                injected.append(fault)
                await asyncio.sleep(self.plan.spacing_s)
            await asyncio.sleep(self.plan.tail_s)
        finally:
            stop.set()
            await load
        outcomes = [t.result() for t in self.tasks]
        self.say(f"{len(outcomes)} payments and {len(self.refunds)} refunds made; reconciling ...")
        report = await self._reconcile(outcomes)
        report.faults_injected = len(injected)
        report.faults = [{"fault": f.name, "detail": f.detail, "recovered_s": None if f.recovered_s is None
                          else round(f.recovered_s, 1)} for f in injected]
        report.faults_not_recovered = sum(1 for f in injected if f.recovered_s is None)
        report.seconds = round(time.monotonic() - started, 1)
        await self.client.close()
        return report

    # --- load ---------------------------------------------------------------------
    async def _load(self, stop: asyncio.Event) -> None:
        interval = 1.0 / self.plan.rate
        due = time.monotonic()
        while not stop.is_set() and len(self.tasks) < self.plan.max_payments:
            self.tasks.append(asyncio.create_task(self._one(len(self.tasks))))
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await asyncio.gather(*self.tasks)

    async def _one(self, index: int) -> Outcome:
        every = self.plan.paypal_share
        outcome = await self.client.pay(provider="paypal" if every and index % every == every - 1 else "stripe")
        self.done.append(outcome)
        if self.plan.refunds and outcome.status == "receipted":
            await self._refund(outcome, REFUND_MIX[index % len(REFUND_MIX)])
        return outcome

    async def _refund(self, paid: Outcome, steps: tuple) -> None:
        """Each step one refund (an amount, None: the rest) or a tuple of refunds sent at once."""
        for step in steps:
            at_once = step if isinstance(step, tuple) else (step,)
            self.refunds += await asyncio.gather(*(self.client.refund(paid, amount) for amount in at_once))

    # --- recovery -----------------------------------------------------------------
    async def _recovery(self, fault: Injected, since: float | None = None) -> float | None:
        start = since or fault.at
        deadline = start + self.plan.recovery_timeout_s
        earlier = [o for o in self.done if o.status == "receipted"] if fault.name in ("wipe-store", "stop-start") else []
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self.faults.healthy) and await self._canary() and await self._all_readable(earlier):
                return time.monotonic() - start
            await asyncio.sleep(0.5)
        return None

    async def _canary(self) -> bool:
        canary = RetryingClient(self.client.api, self.client.auth["Authorization"][7:], self.client.provider,
                                self.client.provider_auth["Authorization"][7:], deadline_s=20)
        try:
            outcome = await canary.pay()
            self.tasks.append(asyncio.create_task(_done(outcome)))  # a payment like any other
            return outcome.status == "receipted" and all(await canary.readable(outcome))
        finally:
            await canary.close()

    async def _all_readable(self, outcomes: list[Outcome]) -> bool:
        for outcome in outcomes:
            if not all(await self.client.readable(outcome)):
                return False
        return True

    # --- the reckoning --------------------------------------------------------------
    async def _reconcile(self, outcomes: list[Outcome]) -> Report:
        report = Report(payments=len(outcomes), paypal_payments=sum(o.provider == "paypal" for o in outcomes))
        for outcome in [*outcomes, *self.refunds]:
            for answer, n in outcome.answers.items():
                report.client_answers[answer] = report.client_answers.get(answer, 0) + n
                code = answer.rsplit(" ", 1)[-1]
                if code == "503":
                    report.answered_503 += n
                elif code.isdigit() and 500 <= int(code) < 600:
                    report.answered_5xx += n
                # Only asked after a 202 or 201 named the payment (or the refund of a receipted one).
                if answer in ("payments 404", "refunds 404"):
                    report.answered_404_after_told += n
        # Reads settle first: the sinks may be a moment behind the last answers (and a read-back
        # names the payment's final provider transaction, which the charge count needs).
        unsettled = [o for o in outcomes if o.payment_id and o.final]
        results: list[tuple[Outcome, bool, bool]] = []
        deadline = time.monotonic() + 60
        while unsettled:
            results = [(o, *await self.client.readable(o)) for o in unsettled]
            unsettled = [o for o, status_ok, receipt_ok in results if not (status_ok and receipt_ok)]
            if not unsettled or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        refund_statuses = await self._refund_statuses()
        ledgers = await self._ledgers(outcomes)
        charges = {pid: ledger.charges for pid, ledger in ledgers.items()}

        def bad(figure: str, outcome: Outcome | RefundOutcome, why: str = "") -> None:
            setattr(report, figure, getattr(report, figure) + 1)
            examples = report.examples.setdefault(figure, [])
            if len(examples) < 5:
                examples.append(f"{outcome.payment_id or outcome.user_id} {why}".strip())

        for outcome in outcomes:
            succeeded = charges.get(outcome.payment_id, 0)
            if succeeded > 1:
                bad("double_charges", outcome, f"{succeeded} charges")
            if succeeded and outcome.status != "receipted":
                bad("charged_not_receipted", outcome, f"client knows {outcome.status}")
            if outcome.status == "receipted" and not succeeded:
                bad("receipted_not_charged", outcome)
            if outcome.status == "rejected":
                bad("rejected", outcome, outcome.failure_reason or "")
            elif outcome.status == "failed":
                bad("failed", outcome, outcome.failure_reason or "")
            elif not outcome.final:
                bad("unresolved", outcome, f"answers {dict(outcome.answers)}")
        for outcome, status_ok, receipt_ok in results:
            if not status_ok:
                bad("unreadable_statuses", outcome)
            if not receipt_ok:
                bad("unreadable_receipts", outcome)
        reckon_refunds(report, bad, self.refunds, refund_statuses, ledgers)
        return report

    async def _refund_statuses(self) -> dict[str, str | None]:
        """Each told refund's status as served, once every one is terminal or a minute has passed (a
        refund left pending by a fault is synced by the worker's timer)."""
        statuses: dict[str, str | None] = {}
        waiting = [r for r in self.refunds if r.refund_id]
        deadline = time.monotonic() + 60
        while waiting:
            for r in waiting:
                statuses[r.refund_id] = await self.client.refund_now(r)
            waiting = [r for r in waiting if statuses[r.refund_id] not in REFUND_FINAL]
            if not waiting or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        return statuses

    async def _ledgers(self, outcomes: list[Outcome]) -> dict[str, Ledger]:
        """Each payment at its providers: the Stripe sandbox searched for every payment id (a charge on an
        object paystream never named counts too), the PayPal stand-in's order of each PayPal payment."""
        s = self.settings
        payment_ids = sorted({o.payment_id for o in outcomes if o.payment_id})
        orders = {o.payment_id: o.final_transaction_id or o.transaction_id for o in outcomes
                  if o.provider == "paypal" and o.payment_id and o.transaction_id}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            ledgers = await stripe_ledgers(http, s.stripe_api_base, payment_ids)
            at_paypal = await paypal_ledgers(http, s.paypal_sandbox_base, orders, s.paypal_client_id or "chaos",
                                             s.paypal_secret.get_secret_value() or "chaos")
        for pid, ledger in at_paypal.items():
            ledgers[pid] = ledgers.get(pid, Ledger()).plus(ledger)
        return ledgers


def reckon_refunds(report: Report, bad: Callable[[str, RefundOutcome, str], None], refunds: list[RefundOutcome],
                   statuses: dict[str, str | None], ledgers: dict[str, Ledger]) -> None:
    """Each refund a client was told about against its provider's refunds; each payment's refunds at
    its provider against what it captured."""
    report.refunds = len(refunds)
    report.refunds_refused = sum(r.status == "refused" for r in refunds)
    told = {r.refund_id for r in refunds if r.refund_id}
    by_payment: dict[str, list[RefundOutcome]] = {}
    for r in refunds:
        by_payment.setdefault(r.payment_id, []).append(r)
    report.payments_refunded_at_once = sum(1 for rs in by_payment.values() if len(rs) > 2)
    for r in refunds:
        ledger = ledgers.get(r.payment_id, Ledger())
        if r.status is None:
            bad("refunds_unresolved", r, f"answers {dict(r.answers)}")
        elif r.status == "rejected":
            bad("refunds_rejected", r, r.detail)
        if r.refund_id is None:
            continue
        final = statuses.get(r.refund_id)
        made = [m for m in ledger.refunds if m.refund_id == r.refund_id]
        if final not in REFUND_FINAL:
            bad("refunds_not_terminal", r, f"{r.refund_id} {final}")
        if len(made) > 1:
            bad("double_refunds", r, f"{r.refund_id}: {len(made)} at the provider")
        if final == "succeeded":
            report.refunds_succeeded += 1
            if not any(m.status == "succeeded" and m.amount_minor == r.amount_minor for m in made):
                bad("lost_refunds", r, f"{r.refund_id} succeeded, at the provider: {made}")
        elif final in ("failed", "canceled") and any(m.status in HOLDING for m in made):
            bad("refunds_misreported", r, f"{r.refund_id} {final}, at the provider: {made}")
    for payment_id, ledger in ledgers.items():
        if ledger.refunded_minor > ledger.captured_minor:
            bad("over_refunds", by_payment.get(payment_id, [RefundOutcome(payment_id, "", None)])[0],
                f"refunded {ledger.refunded_minor} of {ledger.captured_minor}")
        for made in ledger.refunds:
            if made.refund_id not in told:
                bad("refunds_untold", RefundOutcome(payment_id, "", None), f"{made} no client was told of")


async def with_chaos_key(settings: DevSettings, run):
    """`await run(key)` with a new API key of account `chaos`, revoked afterwards."""
    store = bootstrap.api_key_store(settings)
    try:
        key, record = await apikeys.create(store, CHAOS_ACCOUNT, rate_limit=CHAOS_RATE_LIMIT)
        try:
            return await run(key)
        finally:
            await store.revoke(record.key_id)
    finally:
        await store.close()


async def _done(outcome: Outcome) -> Outcome:
    return outcome


def table(report: Report) -> str:
    rows = [("payments", report.payments), ("faults injected", report.faults_injected)]
    rows += [(name.replace("_", " "), getattr(report, name)) for name in BAD]
    rows += [("answered 503 (an outage's answer)", report.answered_503), ("paypal payments", report.paypal_payments),
             ("refunds asked", report.refunds), ("refunds succeeded", report.refunds_succeeded),
             ("refunds refused (nothing left)", report.refunds_refused),
             ("payments refunded at once", report.payments_refunded_at_once)]
    lines = [f"{name:<40}{value:>8}" for name, value in rows]
    lines.append("")
    lines.append(f"{'fault':<22}{'recovered in':>14}  detail")
    for f in report.faults:
        took = f"{f['recovered_s']} s" if f["recovered_s"] is not None else "never"
        lines.append(f"{f['fault']:<22}{took:>14}  {f['detail']}")
    for figure, examples in report.examples.items():
        lines.append(f"{figure}: " + "; ".join(examples))
    lines.append("")
    lines.append("client saw: " + ", ".join(f"{k} x{v}" for k, v in sorted(report.client_answers.items())))
    lines.append(f"every bad figure 0: {'yes' if report.ok else 'NO'} ({report.seconds} s)")
    return "\n".join(lines)


def markdown(report: Report, command: str, commit: str, machine: str, at: str) -> str:
    """RELIABILITY.md: the figures of one run, with the command that made them."""
    lines = ["# paystream reliability: a chaos run", "",
             f"- command: `{command}`", f"- commit: `{commit}`, run at {at}", f"- machine: {machine}",
             f"- {report.payments:,} payments in {report.seconds:.0f} s from retrying clients (same Idempotency-Key "
             "on a retry, a 202 polled until final) while each fault below was injected in turn and recovered "
             "from, each receipted payment refunded (all of it; part then the rest; three refunds at once, together "
             "more than it); then every payment and refund reconciled against the providers' own records (the "
             "Stripe sandbox's charges and their refunds, the PayPal stand-in's orders), and read back.",
             "", "| figure | value |", "|---|---:|", f"| payments | {report.payments:,} |",
             f"| faults injected | {report.faults_injected} |"]
    lines += [f"| {name.replace('_', ' ')} | **{getattr(report, name)}** |" for name in BAD]
    lines += [f"| answered 503 (not a bad figure) | {report.answered_503:,} |",
              f"| payments through PayPal | {report.paypal_payments:,} |",
              f"| refunds asked / succeeded / refused (nothing left) | {report.refunds:,} / "
              f"{report.refunds_succeeded:,} / {report.refunds_refused:,} |",
              f"| payments refunded three times at once | {report.payments_refunded_at_once:,} |"]
    lines += ["", f"Every bad figure (in bold) 0: **{'yes' if report.ok else 'no'}**.", "",
              "The last two bold figures count what the clients met even where they retried past it: a 5xx "
              "other than 503 (an outage is answered with a clear 503 and Retry-After: graceful degradation) "
              "and a 404 for a payment the client had been told about (read-your-writes). A receipt is "
              "readable when it is served with the e-mail its client gave (kept sealed, opened for its "
              "owner)."]
    lines += ["",
              "| fault | what was done | recovered in |", "|---|---|---:|"]
    for f in report.faults:
        took = "never" if f["recovered_s"] is None else f"{f['recovered_s']} s"
        lines.append(f"| {f['fault']} | {f['detail']} | {took} |")
    lines += ["", "Recovered: every service and pipeline process answers its probe, a canary payment completes "
              "and reads back, and after a wipe every payment made before it reads back again; measured from "
              "the moment of the fault.", "",
              "What the clients met on the way (each retried past it): "
              + ", ".join(f"{k} ×{v:,}" for k, v in sorted(report.client_answers.items())) + "."]
    for figure, examples in report.examples.items():
        lines.append(f"\n{figure.replace('_', ' ')}: " + "; ".join(examples))
    return "\n".join(lines) + "\n"
