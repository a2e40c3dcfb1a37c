"""Appending to the hash chain and verifying it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.auth import Principal, Role
from atlas_vault.journal.chain import GENESIS_HASH, entry_hash, format_instant
from atlas_vault.journal.models import JournalEntry
from atlas_vault.journal.repository import JournalRepository

SYSTEM_ACTOR = "urn:atlas:vault"


@dataclass(frozen=True)
class Actor:
    """Who did it, as the journal records it."""

    sub: str
    role: str

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        for role in (Role.ADMIN, Role.OPS, Role.MANAGER, Role.STAFF, Role.AGENT):
            if principal.has_role(role):
                return cls(principal.sub, role.value)
        return cls(principal.sub, "none")


SYSTEM = Actor(SYSTEM_ACTOR, "system")


def hashed_fields(entry: JournalEntry) -> dict[str, Any]:
    """The fields of an entry as the chain hashes them."""
    return {
        "seq": entry.seq,
        "at": format_instant(entry.at),
        "actor": entry.actor,
        "actor_role": entry.actor_role,
        "action": entry.action,
        "document_id": entry.document_id,
        "owner_agent_id": entry.owner_agent_id,
        "request_id": entry.request_id,
        "grant_id": entry.grant_id,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
    }


async def append(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    document_id: str | None = None,
    owner_agent_id: str | None = None,
    request_id: str | None = None,
    grant_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> JournalEntry:
    """Add an entry chained to the head, in the caller's transaction."""
    repo = JournalRepository(session)
    head = await repo.lock_head()
    now = datetime.now(UTC)
    entry = JournalEntry(
        seq=head.seq + 1,
        at=now,
        actor=actor.sub,
        actor_role=actor.role,
        action=action,
        document_id=document_id,
        owner_agent_id=owner_agent_id,
        request_id=request_id,
        grant_id=grant_id,
        detail=detail or {},
        prev_hash=head.hash,
        hash="",
    )
    entry.hash = entry_hash(hashed_fields(entry))
    head.seq, head.hash = entry.seq, entry.hash
    session.add(entry)
    session.add(head)
    await session.flush()
    return entry


class ChainReport(BaseModel):
    """The outcome of verifying the chain: where it first breaks, if it does."""

    ok: bool
    entries_checked: int
    head_seq: int
    first_broken_seq: int | None = None
    reason: str | None = None


async def verify_chain(session: AsyncSession) -> ChainReport:
    """Walk the chain from genesis; report the first missing, edited or unlinked position."""
    repo = JournalRepository(session)
    head = await repo.head()
    head_seq = head.seq if head else 0
    expected, previous, checked = 1, GENESIS_HASH, 0

    def broken(seq: int, reason: str) -> ChainReport:
        return ChainReport(
            ok=False,
            entries_checked=checked,
            head_seq=head_seq,
            first_broken_seq=seq,
            reason=reason,
        )

    async for entry in repo.stream_all():
        if entry.seq != expected:
            return broken(expected, f"entry {expected} is missing")
        if entry.prev_hash != previous:
            return broken(entry.seq, "previous-hash link does not match the entry before")
        if entry_hash(hashed_fields(entry)) != entry.hash:
            return broken(entry.seq, "entry content does not match its hash")
        previous, expected, checked = entry.hash, expected + 1, checked + 1
    if head is None:
        return broken(1, "journal head missing")
    if head.seq != expected - 1 or head.hash != previous:
        return broken(expected, f"entries after {expected - 1} are missing (head at {head.seq})")
    return ChainReport(ok=True, entries_checked=checked, head_seq=head_seq)
