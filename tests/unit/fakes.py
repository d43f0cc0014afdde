"""The unit tests' shared test doubles and samples, in one place: in-memory stand-ins for the ports
(paystream/ports.py) and the commands and payments the tests start from. Test modules import from here,
never from one another (tests/unit/test_walls.py checks)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass

from paystream.domain.commands import PostPayment, RefundPayment, StartPayment
from paystream.domain.errors import ProviderUnavailable, Unavailable
from paystream.domain.model import Payment
from paystream.domain.money import Money
from paystream.domain.provider import RefundStatus
from paystream.domain.sealing import new_data_key
from paystream.ports import (
    ChargeResult,
    PreparedCharge,
    ProviderIntent,
    ProviderRefund,
    ProviderSession,
    TransactionRef,
)

EUR_10 = Money(1000, "EUR")


# --- sample messages ------------------------------------------------------------------
START = StartPayment(command_id="cmd-1", payment_id="pay-1", account="acct-1", user_id="user-1", email="sealed1.x",
                     requested_at="2024-05-01T12:00:00Z", payment_type="credit", amount=Money(1234, "EUR"))
START_NO_AMOUNT = START.model_copy(update={"amount": None, "payment_type": "debit"})
POST = PostPayment(command_id="cmd-2", payment_id="pay-1", account="acct-1", user_id="user-1", email="sealed1.x",
                   requested_at="2024-05-01T12:00:01Z", payment_type="credit", transaction_id="pi_1",
                   amount=Money(1500, "JPY"), payment_method="pm_card_visa")
RECEIPTED = (Payment.start(START, "2024-05-01T12:00:00Z").tokenized("pi_1", "2024-05-01T12:00:01Z")
             .posting(POST.model_copy(update={"amount": Money(1234, "EUR")}), "2024-05-01T12:00:02Z")
             .succeeded("ch_1", "2024-05-01T12:00:03Z").receipted("2024-05-01T12:00:04Z"))


def fresh_payment():
    """A receipted payment with ids no other test uses."""
    suffix = uuid.uuid4().hex[:12]
    payment = RECEIPTED.model_copy(update={"payment_id": f"pay_{suffix}", "receipt_id": f"rcpt_{suffix}",
                                           "transaction_id": f"pi_{suffix}"})
    return payment, payment.receipt()


# --- commands and a clock -------------------------------------------------------------
def clock():
    ticks = itertools.count()
    return lambda: f"2024-05-01T12:00:{next(ticks):02d}Z"


def unavailable(what: str = "connection refused") -> ProviderUnavailable:
    return ProviderUnavailable("provider_unavailable", what)


def start_cmd(**kw) -> StartPayment:
    base = dict(command_id="cmd-start", payment_id="pay-1", account="acct-1", user_id="user-1", email="a@example.com",
                requested_at="2024-05-01T12:00:00Z", payment_type="credit", amount=EUR_10)
    return StartPayment(**{**base, **kw})


def post_cmd(command_id: str = "cmd-post", **kw) -> PostPayment:
    base = dict(command_id=command_id, payment_id="pay-1", account="acct-1", user_id="user-1", email="a@example.com",
                requested_at="2024-05-01T12:00:01Z", payment_type="credit", transaction_id="pi_pay-1",
                amount=EUR_10, payment_method="pm_card_visa")
    return PostPayment(**{**base, **kw})


def refund_cmd(refund_id: str = "rf_1", amount: str | None = None, **kw) -> RefundPayment:
    base = dict(command_id=f"cmd-{refund_id}", payment_id="pay-1", refund_id=refund_id, account="acct-1",
                user_id="user-1", requested_at="2024-05-01T12:01:00Z", amount=amount)
    return RefundPayment(**{**base, **kw})


# --- the worker's side: its table and the provider -----------------------------------
class DictStore:
    """The table in memory. `durable` is what a crash would leave: the state as of the last flush."""

    def __init__(self) -> None:
        self.data: dict[str, dict] = {}
        self.durable: dict[str, dict] = {}
        self.flushed: list[list[str]] = []
        self.puts = 0

    def get(self, payment_id: str) -> Payment | None:
        data = self.data.get(payment_id)
        return Payment.from_dict(data) if data is not None else None

    def put(self, payment: Payment) -> None:
        # Stored serialised, as the real table does, so round-trip bugs show up here.
        self.data[payment.payment_id] = payment.as_dict()
        self.puts += 1

    async def flush(self, changes) -> None:
        self.durable = dict(self.data)
        self.flushed.append([p.status.value for p in changes])

    def crash(self) -> None:
        """Lose everything not flushed, as a SIGKILL would."""
        self.data = dict(self.durable)


class FakeProvider:
    """A provider that remembers each intent's outcome, with per-method scripts (values or exceptions).

    A `confirm` answer scripted as `Lost(result)` charges but raises, as a confirm whose answer
    never came back. Every call is recorded, and each confirm checks that what it charges was
    already on durable record in `store` (when one is given)."""

    def __init__(self, *, sessions=(), prepares=(), charges=(), look_ups=(), store: DictStore | None = None) -> None:
        self.scripts = {"create_session": list(sessions), "prepare_charge": list(prepares),
                        "confirm": list(charges), "look_up": list(look_ups), "session_secret": [],
                        "refund": [], "sync_refund": []}
        #: The refunds the provider made, by paystream's refund id: (status, amount in minor units).
        self.refunds: dict[str, ProviderRefund] = {}
        self.calls: list[tuple] = []
        self.intents: dict[str, ChargeResult] = {}
        self.store = store
        self.confirmed_unrecorded: list[str] = []

    def count(self, method: str) -> int:
        return sum(1 for call in self.calls if call[0] == method)

    def _answer(self, method: str, default):
        script = self.scripts[method]
        answer = script.pop(0) if script else default
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def create_session(self, payment_id, amount):
        self.calls.append(("create_session", payment_id, amount))
        session = self._answer("create_session", ProviderSession(f"pi_{payment_id}", f"secret_{payment_id}"))
        self.intents.setdefault(session.transaction_id, ChargeResult("not_charged"))
        return session

    async def prepare_charge(self, payment_id, attempt, transaction_id, amount, payment_method, used=()):
        self.calls.append(("prepare_charge", payment_id, attempt, transaction_id, amount, payment_method, tuple(used)))
        intent_id = transaction_id if transaction_id not in used else f"pi_{payment_id}_{attempt}"
        prepared = self._answer("prepare_charge", PreparedCharge(intent_id))
        if prepared.intent_id is not None:
            self.intents.setdefault(prepared.intent_id, ChargeResult("not_charged"))
        return prepared

    async def session_secret(self, transaction_id):
        self.calls.append(("session_secret", transaction_id))
        return self._answer("session_secret", f"secret_{transaction_id.removeprefix('pi_')}")

    async def confirm(self, payment_id, attempt, intent_id):
        self.calls.append(("confirm", payment_id, attempt, intent_id))
        if self.store is not None and intent_id not in Payment.from_dict(self.store.durable[payment_id]).charge_intent_ids:
            self.confirmed_unrecorded.append(intent_id)
        script = self.scripts["confirm"]
        answer = script.pop(0) if script else ChargeResult("succeeded", charge_id=f"ch_{attempt}")
        if isinstance(answer, Lost):
            self.intents[intent_id] = answer.result
            raise unavailable("timeout")
        if isinstance(answer, BaseException):
            raise answer
        if answer.outcome != "not_charged":
            self.intents[intent_id] = answer
        return answer

    async def look_up(self, intent_ids):
        self.calls.append(("look_up", tuple(intent_ids)))
        scripted = self._answer("look_up", None)
        if scripted is not None:
            return scripted
        return [ProviderIntent(i, found=i in self.intents, result=self.intents.get(i, ChargeResult("not_charged")))
                for i in intent_ids]


    async def refund(self, refund_id, payment_id, transaction_id, amount, reason=None):
        """Makes the refund (succeeded) unless scripted otherwise; `Lost(status)` makes it and answers unknown."""
        self.calls.append(("refund", refund_id, payment_id, transaction_id, amount))
        if self.store is not None and Payment.from_dict(self.store.durable[payment_id]).refund(refund_id) is None:
            self.confirmed_unrecorded.append(refund_id)
        script = self.scripts["refund"]
        answer = script.pop(0) if script else RefundStatus.SUCCEEDED
        lost = isinstance(answer, Lost)
        status = answer.result if lost else answer
        made = ProviderRefund(refund_id, found=True, status=status, provider_refund_id=f"re_{len(self.refunds)}",
                              amount=amount)
        if status is not RefundStatus.FAILED:
            self.refunds[refund_id] = made
        if lost:
            return ProviderRefund(refund_id, found=True, status=RefundStatus.UNKNOWN)
        return made

    async def sync_refund(self, refund_id, transaction_id, provider_refund_id=None):
        self.calls.append(("sync_refund", refund_id, provider_refund_id))
        scripted = self._answer("sync_refund", None)
        if scripted is not None:
            return scripted
        return self.refunds.get(refund_id) or ProviderRefund(refund_id, found=False, status=RefundStatus.UNKNOWN)


@dataclass(frozen=True)
class Lost:
    """A confirm that charged, but whose answer was lost."""

    result: ChargeResult


# --- the read side: cache, store, data keys, the workers' table ------------------------
KEY = new_data_key()


def down(what: str):
    raise Unavailable(f"{what}_unavailable", f"{what} is down")


class MemoryCache:
    """The receipt cache (ReceiptCache): receipts, the transaction index, accepted payments and the
    idempotency records ({scoped key: [fingerprint, sealed response or None]}), as Redis keeps them."""

    def __init__(self, is_down: bool = False) -> None:
        self.receipts: dict[tuple[str, str, str], bytes] = {}
        self.transactions: dict[str, TransactionRef] = {}
        self.accepted: dict = {}
        self.idempotency: dict[str, list] = {}
        self.is_down = is_down

    async def claim_idempotency_key(self, key, fingerprint):
        if key not in self.idempotency:
            self.idempotency[key] = [fingerprint, None]
            return None
        first, response = self.idempotency[key]
        return first, response

    async def store_response(self, key, sealed_response):
        record = self.idempotency.setdefault(key, [None, None])
        if record[1] is None:  # the first answer stays, as Redis's HSETNX keeps it
            record[1] = sealed_response

    async def get_receipt(self, account, user_id, receipt_id):
        if self.is_down:
            down("cache")
        return self.receipts.get((account, user_id, receipt_id))

    async def put_receipt(self, receipt):
        self.receipts[(receipt.account, receipt.user_id, receipt.receipt_id)] = receipt.model_dump_json().encode()

    async def get_transaction(self, transaction_id):
        if self.is_down:
            down("cache")
        return self.transactions.get(transaction_id)

    async def put_transaction(self, transaction_id, ref):
        self.transactions[transaction_id] = ref

    async def put_accepted(self, accepted):
        self.accepted[accepted.view.payment_id] = accepted

    async def get_accepted(self, payment_id):
        if self.is_down:
            down("cache")
        return self.accepted.get(payment_id)


class MemoryStore:
    def __init__(self, payments=(), receipts=(), transactions=None, index=None, is_down=False,
                 history=True) -> None:
        self.history = history
        self.payments = {p.payment_id: p for p in payments}
        self.receipts = {r.receipt_id: r for r in receipts}
        self.transactions = transactions or {}
        self.index = index or {}
        self.is_down = is_down

    async def get_payment(self, payment_id):
        if self.is_down:
            down("store")
        return self.payments.get(payment_id)

    async def get_receipt(self, receipt_id):
        return self.receipts.get(receipt_id)

    async def get_transaction(self, transaction_id):
        return self.transactions.get(transaction_id)

    async def user_index(self, kind, account, user_id):
        return self.index.get((kind, account, user_id), {})

    async def holds_history(self):
        return self.history


class MemoryKeys:
    def __init__(self, keys=None) -> None:
        self.keys = dict(keys if keys is not None else {("acct-1", "user-1"): KEY})

    async def get(self, account, user_id):
        return self.keys.get((account, user_id))


class MemoryTable:
    """The workers' table: the latest state of each payment."""

    def __init__(self, payments=(), is_down=False) -> None:
        self.payments = {p.payment_id: p for p in payments}
        self.is_down = is_down
        self.asked = 0

    async def get_payment(self, payment_id, account, user_id):
        self.asked += 1
        if self.is_down:
            down("table")
        found = self.payments.get(payment_id)
        mine = found is not None and found.account == account and user_id in (None, found.user_id)
        return found.public_view() if mine else None
