"""HTTP endpoints of the journal: an owner's extract, and the chain's verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from atlas_events.auth import AUTH_RESPONSES, CurrentPrincipal, Role
from atlas_events.errors import error_responses
from atlas_events.schemas._base import EntityId
from atlas_events.service import SessionDep
from atlas_vault.errors import AccessDenied
from atlas_vault.journal.models import JournalEntryPublic
from atlas_vault.journal.repository import JournalRepository
from atlas_vault.journal.service import Actor, ChainReport, append, verify_chain

router = APIRouter(prefix="/v1/journal", tags=["journal"])


class JournalPage(BaseModel):
    entries: list[JournalEntryPublic]
    next_after: int | None


@router.get(
    "",
    response_model=JournalPage,
    summary="Read one's own journal: deposits, reads, grants and who consulted for which request",
    responses={**AUTH_RESPONSES, **error_responses(AccessDenied)},
)
async def read_journal(
    session: SessionDep,
    principal: CurrentPrincipal,
    document_id: EntityId | None = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JournalPage:
    """Entries about the caller's documents, oldest first, from position `after`."""
    if not principal.has_role(Role.AGENT):
        raise AccessDenied("the journal extract is read by the documents' owner")
    entries = await JournalRepository(session).for_owner(
        principal.sub, document_id=document_id, after=after, limit=limit
    )
    page = JournalPage(
        entries=[JournalEntryPublic.model_validate(e, from_attributes=True) for e in entries],
        next_after=entries[-1].seq if len(entries) == limit else None,
    )
    await append(
        session,
        Actor.of(principal),
        "read_journal",
        document_id=document_id,
        owner_agent_id=principal.sub,
        detail={"entries": len(entries)},
    )
    return page


@router.get(
    "/verify",
    response_model=ChainReport,
    summary="Verify the journal's hash chain; reports the first broken position",
    responses={**AUTH_RESPONSES, **error_responses(AccessDenied)},
)
async def verify_journal(session: SessionDep, principal: CurrentPrincipal) -> ChainReport:
    """Ops and admins: walk the whole chain (no document content is involved)."""
    if not (principal.is_ops or principal.has_role(Role.ADMIN)):
        raise AccessDenied("journal verification is for ops and admins")
    return await verify_chain(session)
