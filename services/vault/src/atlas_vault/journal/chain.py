"""The journal's hash chain, shared by the service and the offline verifier (stdlib only)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class ChainBreak:
    """One broken position of the chain and what is wrong there."""

    seq: int
    reason: str


@dataclass
class ChainWalk:
    """Walks entries in seq order and keeps every break, not only the first.

    Each entry is linked to the stored hash of the one before, so an edited entry is named alone
    (its successor still links to the hash it was chained to); across a gap, the link cannot be
    checked and the gap itself is the break.
    """

    breaks: list[ChainBreak] = field(default_factory=list)
    checked: int = 0
    _expected: int = 1
    _previous: str = GENESIS_HASH

    def add(self, fields: dict[str, Any], stored_hash: str) -> None:
        """Check the next entry: `fields` as `entry_hash` takes them, `stored_hash` as stored."""
        seq = int(fields["seq"])
        if seq > self._expected:
            missing = (
                f"entry {self._expected} is missing"
                if seq == self._expected + 1
                else f"entries {self._expected} to {seq - 1} are missing"
            )
            self.breaks.append(ChainBreak(self._expected, missing))
        elif fields.get("prev_hash") != self._previous:
            self.breaks.append(
                ChainBreak(seq, "previous-hash link does not match the entry before")
            )
        if entry_hash(fields) != stored_hash:
            self.breaks.append(ChainBreak(seq, "entry content does not match its hash"))
        self._expected, self._previous = seq + 1, stored_hash
        self.checked += 1

    def finish(self, head_seq: int | None, head_hash: str | None) -> None:
        """Check the head row against the last entry seen (entries deleted at the end)."""
        last = self._expected - 1
        if head_seq is None:
            self.breaks.append(ChainBreak(last + 1, "journal head missing"))
        elif head_seq > last:
            self.breaks.append(
                ChainBreak(last + 1, f"entries after {last} are missing (head at {head_seq})")
            )
        elif head_seq != last or head_hash != self._previous:
            self.breaks.append(
                ChainBreak(head_seq, f"the head (seq {head_seq}) does not match entry {last}")
            )
