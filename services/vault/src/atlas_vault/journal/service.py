"""Appending to the hash chain and verifying it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.auth import Principal, Role
from atlas_vault.journal.chain import ChainWalk, entry_hash, format_instant
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


MAX_REPORTED_BREAKS = 100


class JournalBreak(BaseModel):
    """A broken position of the chain: the entry's seq and what is wrong there."""

    seq: int
    reason: str


class ChainReport(BaseModel):
    """The outcome of verifying the chain: where it first breaks, and every break found."""

    ok: bool
    entries_checked: int
    head_seq: int
    first_broken_seq: int | None = None
    reason: str | None = None
    breaks: list[JournalBreak] = Field(
        default_factory=list,
        description=f"Every broken position in seq order (the first {MAX_REPORTED_BREAKS}).",
    )


async def verify_chain(session: AsyncSession) -> ChainReport:
    """Walk the chain from genesis; report each missing, edited or unlinked position."""
    repo = JournalRepository(session)
    walk = ChainWalk()
    async for entry in repo.stream_all():
        walk.add(hashed_fields(entry), entry.hash)
    head = await repo.head()
    walk.finish(head.seq if head else None, head.hash if head else None)
    report = ChainReport(
        ok=not walk.breaks,
        entries_checked=walk.checked,
        head_seq=head.seq if head else 0,
        breaks=[JournalBreak(seq=b.seq, reason=b.reason) for b in walk.breaks][
            :MAX_REPORTED_BREAKS
        ],
    )
    if walk.breaks:
        report.first_broken_seq, report.reason = walk.breaks[0].seq, walk.breaks[0].reason
    return report
