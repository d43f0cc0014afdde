"""The base of every message paystream puts on a topic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


def _version_one_if_absent(schema: dict, model: type) -> None:
    # Messages written before versioning carry no schema_version: they are version 1.
    if "schema_version" in schema.get("required", []):
        schema["required"].remove("schema_version")


class Message(BaseModel):
    """Immutable and versioned; a reader ignores fields it does not know (a newer writer's),
    so a rolling deploy never makes an older consumer drop a message."""

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_serialization_defaults_required=True,
                              json_schema_extra=_version_one_if_absent)

    schema_version: int = 1
