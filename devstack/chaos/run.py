"""`paystream chaos`: payments from retrying clients while every process and service fails in turn,
then a reconciliation against the provider sandbox's own records.

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
from dataclasses import asdict, dataclass, field

import aiohttp

from devstack.chaos.client import Outcome, RetryingClient
from devstack.chaos.faults import Faults, Injected
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
       "answered_404_after_told")


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
                                     deadline_s=plan.client_deadline_s)
        self.tasks: list[asyncio.Task] = []
        self.done: list[Outcome] = []

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
        self.say(f"{len(outcomes)} payments made; reconciling ...")
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
            self.tasks.append(asyncio.create_task(self._one()))
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await asyncio.gather(*self.tasks)

    async def _one(self) -> Outcome:
        outcome = await self.client.pay()
        self.done.append(outcome)
        return outcome

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
        report = Report(payments=len(outcomes))
        for outcome in outcomes:
            for answer, n in outcome.answers.items():
                report.client_answers[answer] = report.client_answers.get(answer, 0) + n
                code = answer.rsplit(" ", 1)[-1]
                if code == "503":
                    report.answered_503 += n
                elif code.isdigit() and 500 <= int(code) < 600:
                    report.answered_5xx += n
                if answer == "payments 404":  # only asked after a 202 or 201 named the payment
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
        charges = await self._charges(outcomes)

        def bad(figure: str, outcome: Outcome, why: str = "") -> None:
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
        return report

    async def _charges(self, outcomes: list[Outcome]) -> dict[str, int]:
        """Succeeded charges per payment id, over every provider object that carries the payment's id in
        its metadata (the intent each client was given, a fresh one the worker opened after a decline,
        any other): the sandbox's own search (devstack/stack/stripe_sandbox.py), a few hundred at a time.
        Not only the ids paystream told: a charge on an object it never named counts too."""
        payment_ids = sorted({o.payment_id for o in outcomes if o.payment_id})
        counts: dict[str, int] = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            for i in range(0, len(payment_ids), 200):
                query = [("payment_id", pid) for pid in payment_ids[i:i + 200]]
                async with http.get(f"{self.settings.stripe_api_base}/_config/charges", params=query) as resp:
                    resp.raise_for_status()
                    found = await resp.json()
                counts |= {pid: sum(1 for c in row["charges"] if c["status"] == "succeeded")
                           for pid, row in found.items()}
        return counts


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
    rows += [("answered 503 (an outage's answer)", report.answered_503)]
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
             "from; then every payment reconciled against the provider sandbox's own charges, and read back.",
             "", "| figure | value |", "|---|---:|", f"| payments | {report.payments:,} |",
             f"| faults injected | {report.faults_injected} |"]
    lines += [f"| {name.replace('_', ' ')} | **{getattr(report, name)}** |" for name in BAD]
    lines += [f"| answered 503 (not a bad figure) | {report.answered_503:,} |"]
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
