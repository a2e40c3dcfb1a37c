"""Granting, revoking and checking staff access to documents."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.auth import STAFF_ROLES, Principal
from atlas_events.cloudevents import CloudEvent
from atlas_events.outbox import Outbox
from atlas_events.schemas import vault as ev
from atlas_events.schemas.requests import RequestStatusChanged
from atlas_vault.context import SOURCE
from atlas_vault.documents.models import Document, DocumentStatus
from atlas_vault.errors import DocumentNotAvailable, DocumentNotScanned, InvalidGrant
from atlas_vault.grants.models import Grant, GrantPublic, RequestState
from atlas_vault.grants.repository import GrantRepository
from atlas_vault.grants.schemas import GrantCreate
from atlas_vault.journal.service import SYSTEM, Actor, append

# Statuses after which a request no longer needs documents; the requests service speaks French,
# its event contract's examples English: both are honoured.
CLOSING_STATUSES = frozenset(
    {
        "terminee",
        "refusee",
        "sans_suite",
        "transferee",
        "closed",
        "resolved",
        "cancelled",
        "rejected",
        "transferred",
    }
)


def is_live(grant: Grant, now: datetime, request: RequestState | None) -> bool:
    expires = grant.expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return grant.revoked_at is None and expires > now and not (request and request.closed)


def to_public(grant: Grant, now: datetime, request: RequestState | None) -> GrantPublic:
    return GrantPublic.model_validate({**grant.model_dump(), "live": is_live(grant, now, request)})


async def live_grant(
    session: AsyncSession, document: Document, principal: Principal, request_id: str | None
) -> Grant | None:
    """The staff member's live grant on the document (checked on every read), if any."""
    if not principal.has_role(*STAFF_ROLES):
        return None
    now = datetime.now(UTC)
    repo = GrantRepository(session)
    for grant in await repo.live_for(document.id, principal.sub, now, request_id):
        if grant.atlas_id is not None and grant.atlas_id != principal.atlas_id:
            continue
        if is_live(grant, now, await repo.request_state(grant.request_id)):
            return grant
    return None


async def create_grant(
    session: AsyncSession,
    outbox: Outbox,
    actor: Actor,
    document: Document,
    body: GrantCreate,
    *,
    max_days: int,
) -> Grant:
    """Share an available document with a named staff member until an expiry."""
    if document.status == DocumentStatus.QUARANTINED:
        raise DocumentNotScanned("the document has not been scanned yet and cannot be shared")
    if document.status != DocumentStatus.AVAILABLE:
        raise DocumentNotAvailable(f"a {document.status} document cannot be shared")
    now = datetime.now(UTC)
    if body.expires_at <= now:
        raise InvalidGrant("expires_at must be in the future")
    if body.expires_at > now + timedelta(days=max_days):
        raise InvalidGrant(f"a grant may last at most {max_days} days")
    if body.grantee == document.owner_agent_id:
        raise InvalidGrant("the owner needs no grant")
    repo = GrantRepository(session)
    state = await repo.request_state(body.request_id)
    if state is not None and state.closed:
        raise InvalidGrant(f"request {body.request_id} is closed ({state.status})")
    grant = Grant(
        id=str(uuid.uuid4()),
        document_id=document.id,
        owner_agent_id=document.owner_agent_id,
        grantee=body.grantee,
        atlas_id=body.atlas_id,
        request_id=body.request_id,
        created_at=now,
        expires_at=body.expires_at.astimezone(UTC),
    )
    session.add(grant)
    await session.flush()
    await append(
        session,
        actor,
        "grant",
        document_id=document.id,
        owner_agent_id=document.owner_agent_id,
        request_id=grant.request_id,
        grant_id=grant.id,
        detail={"grantee": grant.grantee, "expires_at": grant.expires_at.isoformat()},
    )
    await outbox.add(
        session,
        CloudEvent.create(
            ev.GRANT_CREATED,
            SOURCE,
            ev.GrantCreated(
                grant_id=grant.id,
                document_id=document.id,
                owner_agent_id=document.owner_agent_id,
                grantee_kind="staff",
                grantee=grant.grantee,
                permission="read",
                expires_at=grant.expires_at,
                created_at=now,
                request_id=grant.request_id,
            ),
        ),
        key=document.id,
    )
    return grant


async def revoke_grant(
    session: AsyncSession, outbox: Outbox, actor: Actor, grant: Grant, reason: str
) -> None:
    """Revoke a grant now, journal it and say so on the topic."""
    if grant.revoked_at is not None:
        return
    now = datetime.now(UTC)
    grant.revoked_at, grant.revoked_by, grant.revoke_reason = now, actor.sub, reason
    session.add(grant)
    await append(
        session,
        actor,
        "grant_revoked",
        document_id=grant.document_id,
        owner_agent_id=grant.owner_agent_id,
        request_id=grant.request_id,
        grant_id=grant.id,
        detail={"grantee": grant.grantee, "reason": reason},
    )
    await outbox.add(
        session,
        CloudEvent.create(
            ev.GRANT_REVOKED,
            SOURCE,
            ev.GrantRevoked.model_validate(
                {
                    "grant_id": grant.id,
                    "document_id": grant.document_id,
                    "owner_agent_id": grant.owner_agent_id,
                    "revoked_by": actor.sub,
                    "revoked_at": now,
                    "request_id": grant.request_id,
                    "reason": reason,
                }
            ),
        ),
        key=grant.document_id,
    )


async def apply_request_status(
    session: AsyncSession, outbox: Outbox, data: RequestStatusChanged
) -> int:
    """Record a request's status; when it closes, revoke every grant made for it."""
    repo = GrantRepository(session)
    state = await repo.request_state(data.request_id)
    closed = data.status in CLOSING_STATUSES
    changed_at = data.changed_at.astimezone(UTC)
    if state is None:
        state = RequestState(
            request_id=data.request_id, status=data.status, closed=closed, changed_at=changed_at
        )
    else:
        known = state.changed_at
        known = known.replace(tzinfo=UTC) if known.tzinfo is None else known
        if changed_at < known:
            return 0  # an older status arriving late changes nothing
        state.status, state.closed, state.changed_at = data.status, closed, changed_at
    session.add(state)
    if not closed:
        return 0
    grants = await repo.unrevoked_for_request(data.request_id)
    for grant in grants:
        await revoke_grant(session, outbox, SYSTEM, grant, "request_closed")
    return len(grants)
