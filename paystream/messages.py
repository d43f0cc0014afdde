"""Every topic's value type, and the one place messages are encoded and decoded.

Commands, events, receipts and replies are the domain's (paystream/domain/);
heartbeats, alerts and dead letters are the operators'. Each is a pydantic
model with a `schema_version` whose reader ignores unknown fields. A message
that does not fit its topic's type raises `UnreadableMessage`; consumers send
it to the dead-letter topic (never skip it silently). `paystream schemas`
writes each type's JSON Schema into docs/schemas/.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from paystream.domain.commands import Command, CommandReply
from paystream.domain.events import PaymentChanged, RefundChanged
from paystream.domain.message import Message
from paystream.domain.records import Receipt


class Heartbeat(Message):
    """Every few seconds, each process says who and how it is (see observability/heartbeat.py)."""

    component_id: str  # kind@host:port, stable across restarts
    kind: str
    host: str
    pid: int
    state: Literal["running", "stopping"] = "running"
    at: str
    uptime_s: float
    rss_bytes: int
    cpu_percent: float
    open_connections: int
    metrics_url: str | None = None
    in_flight: int = 0
    consumer_lag: int | None = None
    verdict: str = "healthy"


class Alert(Message):
    """A state change the monitor saw: a component or service going down or coming back."""

    at: str
    subject: str
    kind: str
    previous: str | None = None
    state: str
    reason: str


class DeadLetter(Message):
    """A message its consumer could not handle, set aside with the error so its partition moves on."""

    at: str
    component: str
    topic: str
    partition: int
    offset: int
    key: str | None = None
    value_base64: str
    headers: dict[str, str] = {}
    error: str
    #: How many times its handler was tried (1: it could not be read at all).
    attempts: int = 1

    @property
    def value(self) -> bytes:
        return base64.b64decode(self.value_base64)


class DataKeyRecorded(Message):
    """A user's data key, as the compacted data-keys topic keeps it (keyed by `data_key_id`): what a lost
    store gets its keys back from. Forgetting the user writes a tombstone (no value) after it."""

    account: str
    user_id: str
    key_base64: str

    @property
    def key(self) -> bytes:
        return base64.b64decode(self.key_base64)

    @classmethod
    def of(cls, account: str, user_id: str, key: bytes) -> DataKeyRecorded:
        return cls(account=account, user_id=user_id, key_base64=base64.b64encode(key).decode())


def data_key_id(account: str, user_id: str) -> bytes:
    """The data-keys topic's message key: one per user, so compaction keeps only the latest."""
    return f"{account}\x00{user_id}".encode()


def data_key_owner(message_key: bytes) -> tuple[str, str]:
    account, _, user_id = message_key.decode().partition("\x00")
    return account, user_id


#: The value type of each topic, by the field names of `paystream.topics.TopicNames`.
TOPIC_TYPES: dict[str, Any] = {
    "commands": Command,
    "replies": CommandReply,
    "events": PaymentChanged,
    "receipts": Receipt,
    "heartbeats": Heartbeat,
    "alerts": Alert,
    "dead_letters": DeadLetter,
    "data_keys": DataKeyRecorded,
    "refunds": RefundChanged,
}
_ADAPTERS = {topic: TypeAdapter(value_type) for topic, value_type in TOPIC_TYPES.items()}


class UnreadableMessage(ValueError):
    def __init__(self, topic: str, error: str) -> None:
        super().__init__(f"not a valid {topic} message: {error}")
        self.topic = topic
        self.error = error


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json().encode()


def decode(topic: str, raw: bytes | str | None) -> Any:
    """The typed value of a message read from `topic` (a TopicNames field name)."""
    if raw is None:
        raise UnreadableMessage(topic, "the message has no value")
    try:
        return _ADAPTERS[topic].validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise UnreadableMessage(topic, f"{where}: {first['msg']}") from None


def dead_letter(component: str, topic: str, partition: int, offset: int, key: bytes | None,
                value: bytes | None, headers: dict[str, str], error: str, at: str, attempts: int = 1) -> DeadLetter:
    return DeadLetter(
        at=at, component=component, topic=topic, partition=partition, offset=offset,
        key=key.decode(errors="replace") if key is not None else None,
        value_base64=base64.b64encode(value or b"").decode(), headers=headers, error=error, attempts=attempts,
    )


def json_schemas() -> dict[str, dict]:
    """The JSON Schema of each topic's value, as written to docs/schemas/<topic>.schema.json."""
    schemas = {}
    for topic, adapter in _ADAPTERS.items():
        schema = adapter.json_schema(mode="serialization")
        schemas[topic] = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                          "$id": f"https://paystream.local/schemas/{topic}.schema.json",
                          "title": f"paystream {topic.replace('_', ' ')} message", **schema}
    return schemas
