"""The base of every message paystream puts on a topic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    """Immutable and versioned; a reader ignores fields it does not know (a newer writer's),
    so a rolling deploy never makes an older consumer drop a message."""

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_serialization_defaults_required=True)

    schema_version: int = 1
