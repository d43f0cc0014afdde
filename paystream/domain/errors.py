"""Errors the domain raises; each carries a machine-readable code and the field at fault."""

from __future__ import annotations


class PaymentError(Exception):
    """Base of every error a client can be told about."""

    type = "payment_error"

    def __init__(self, code: str, message: str, field: str | None = None, decline_code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.decline_code = decline_code

    def as_dict(self) -> dict:
        return {"type": self.type, "code": self.code, "message": self.message, "field": self.field,
                "decline_code": self.decline_code}


class InvalidRequest(PaymentError):
    type = "invalid_request_error"


class NotFound(PaymentError):
    """Also what a caller sees for another user's payment: its existence is not revealed."""

    type = "not_found_error"


class IllegalTransition(PaymentError):
    type = "state_error"


class CardDeclined(PaymentError):
    type = "card_error"


class ProviderUnavailable(PaymentError):
    type = "provider_error"


class ProviderUnreachable(ProviderUnavailable):
    """The provider was not reached at all (the connection was refused, no answer to connect): no request
    got there, so nothing was made there. What allows a start to fall back to another provider."""


class Unavailable(PaymentError):
    """A part of paystream itself cannot answer now; the same request may be repeated later."""

    type = "unavailable_error"

