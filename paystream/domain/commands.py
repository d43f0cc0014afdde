"""Commands: what a client asks paystream to do, already validated and typed.

They travel on Kafka as JSON (`as_dict` / `command_from_dict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from paystream.domain.money import Money


@dataclass(frozen=True)
class StartPayment:
    command_id: str
    payment_id: str
    user_id: str
    email: str
    requested_at: str  # ISO 8601, as the client sent it
    payment_type: str  # credit | debit
    amount: Money | None = None

    kind = "start"


@dataclass(frozen=True)
class PostPayment:
    command_id: str
    payment_id: str
    user_id: str
    email: str
    requested_at: str
    payment_type: str
    transaction_id: str
    amount: Money
    payment_method: str

    kind = "post"


Command = StartPayment | PostPayment


def command_as_dict(command: Command) -> dict:
    data = asdict(command)
    data["kind"] = command.kind
    if command.amount is not None:
        data["amount"] = command.amount.as_dict()
    return data


def command_from_dict(data: dict) -> Command:
    data = dict(data)
    kind = data.pop("kind")
    amount = data.pop("amount", None)
    money = Money.from_dict(amount) if amount else None
    if kind == StartPayment.kind:
        return StartPayment(**data, amount=money)
    if kind == PostPayment.kind:
        return PostPayment(**data, amount=money)
    raise ValueError(f"unknown command kind {kind!r}")
