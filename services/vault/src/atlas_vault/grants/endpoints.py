"""HTTP endpoints of grants: share with a named staff member, list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from atlas_events.auth import AUTH_RESPONSES, CurrentPrincipal
from atlas_events.errors import error_responses
from atlas_events.schemas._base import EntityId
from atlas_events.service import RuntimeDep, SessionDep
from atlas_vault.context import VaultDep
from atlas_vault.documents import service as documents
from atlas_vault.errors import (
    AccessDenied,
    DocumentNotAvailable,
    DocumentNotFound,
    DocumentNotScanned,
    GrantNotFound,
    InvalidGrant,
)
from atlas_vault.grants import service
from atlas_vault.grants.models import GrantPublic
from atlas_vault.grants.repository import GrantRepository
from atlas_vault.grants.schemas import GrantCreate
from atlas_vault.journal.service import Actor

router = APIRouter(prefix="/v1", tags=["grants"])


async def _owned(
    session: SessionDep, principal: CurrentPrincipal, document_id: str
) -> documents.Access:
    access = await documents.authorize(session, principal, document_id, None)
    if access.grant is not None:
        raise AccessDenied("only the owner manages a document's grants")
    return access


@router.post(
    "/documents/{document_id}/grants",
    status_code=201,
    response_model=GrantPublic,
    summary="Share a document with a named staff member for a request, until an expiry",
    responses={
        **AUTH_RESPONSES,
        **error_responses(DocumentNotFound, AccessDenied, DocumentNotScanned, InvalidGrant),
    },
)
async def create_grant(
    document_id: EntityId,
    body: GrantCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    vault: VaultDep,
    principal: CurrentPrincipal,
) -> GrantPublic:
    """Never a bearer link: the grant names the staff member, the request and the expiry."""
    access = await _owned(session, principal, document_id)
    grant = await service.create_grant(
        session,
        runtime.outbox,
        Actor.of(principal),
        access.document,
        body,
        max_days=vault.settings.max_grant_days,
    )
    return service.to_public(grant, datetime.now(UTC), None)


@router.get(
    "/documents/{document_id}/grants",
    response_model=list[GrantPublic],
    summary="The grants of a document",
    responses={**AUTH_RESPONSES, **error_responses(DocumentNotFound, AccessDenied)},
)
async def list_grants(
    document_id: EntityId, session: SessionDep, principal: CurrentPrincipal
) -> list[GrantPublic]:
    """Every grant ever made on the document, live or not (owner only)."""
    await _owned(session, principal, document_id)
    repo = GrantRepository(session)
    now = datetime.now(UTC)
    return [
        service.to_public(g, now, await repo.request_state(g.request_id))
        for g in await repo.for_document(document_id)
    ]


@router.delete(
    "/grants/{grant_id}",
    status_code=204,
    summary="Revoke a grant",
    responses={**AUTH_RESPONSES, **error_responses(GrantNotFound, DocumentNotAvailable)},
)
async def revoke_grant(
    grant_id: EntityId, session: SessionDep, runtime: RuntimeDep, principal: CurrentPrincipal
) -> None:
    """The owner withdraws access at once."""
    grant = await GrantRepository(session).get(grant_id)
    if grant is None or grant.owner_agent_id != principal.sub:
        raise GrantNotFound(f"no grant {grant_id} on your documents")
    await _owned(session, principal, grant.document_id)
    await service.revoke_grant(session, runtime.outbox, Actor.of(principal), grant, "owner")
