"""The journal's hash chain, shared by the service and the offline verifier (stdlib only)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "at",
    "actor",
    "actor_role",
    "action",
    "document_id",
    "owner_agent_id",
    "request_id",
    "grant_id",
    "detail",
    "prev_hash",
)


def format_instant(value: datetime) -> str:
    """One spelling of an instant, whatever the database handed back (aware or naive UTC)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry's fields, the previous hash included."""
    body = {name: fields.get(name) for name in HASHED_FIELDS}
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()
