"""What the API writes on the read side ahead of the sinks, so a client reads what it was just told.

The sinks write every document from the topics (paystream/projection.py), but
a client may act on an answer before they catch up: post the transaction it was
just given, read the receipt it just got, poll a payment it was told is being
processed. These put the entries those reads need in the receipt cache the moment
the client is told: the same entries the sinks' projection implies (the sinks
write them again, the same), and for a payment accepted with no outcome yet,
what it may read of it until the pipeline has it (paystream/views.py reads
them). Only ports here; no I/O of its own.
"""

from __future__ import annotations

from paystream import views
from paystream.domain.commands import RefundPayment, StartPayment
from paystream.domain.records import PaymentView, Receipt
from paystream.ports import ReceiptCache
from paystream.projection import transaction_ref


async def transaction_given(cache: ReceiptCache, account: str, payment: PaymentView) -> None:
    """A tokenized payment's transaction id, indexed before the client hears of it: its post finds it
    whatever the sinks' lag (on a 201, and on the status read a client told 202 learns it from)."""
    await cache.put_transaction(payment.transaction_id, transaction_ref(payment.payment_id, payment.user_id, account))


async def receipt_given(cache: ReceiptCache, receipt: Receipt) -> None:
    """A receipt, cached (sealed, as the sinks cache it) before the client has it: readable at once."""
    await cache.put_receipt(receipt)


async def payment_accepted(cache: ReceiptCache, command: StartPayment, at: str) -> None:
    """A new payment a client was told 202 for: its status reads say "processing", never 404, until the
    pipeline has it."""
    await cache.put_accepted(views.accepted(command, at))


async def refund_asked(cache: ReceiptCache, command: RefundPayment) -> None:
    """Which payment a refund id belongs to, indexed before the client can poll it (refund ids share the
    transaction index: `rf_…` is no provider's id). Harmless for a refund the worker then refuses: its
    payment has no such refund, so reading it is a 404."""
    await cache.put_transaction(command.refund_id, transaction_ref(command.payment_id, command.user_id,
                                                                   command.account))
