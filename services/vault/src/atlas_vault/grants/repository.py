"""Queries on grants and request states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from atlas_vault.grants.models import Grant, RequestState


class GrantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, grant_id: str) -> Grant | None:
        return (
            await self.session.execute(select(Grant).where(Grant.id == grant_id))
        ).scalar_one_or_none()

    async def for_document(self, document_id: str) -> Sequence[Grant]:
        query = (
            select(Grant).where(Grant.document_id == document_id).order_by(col(Grant.created_at))
        )
        return (await self.session.execute(query)).scalars().all()

    async def live_for(
        self, document_id: str, grantee: str, now: datetime, request_id: str | None
    ) -> Sequence[Grant]:
        """Unrevoked, unexpired grants of a document to a staff member (request states aside)."""
        query = select(Grant).where(
            Grant.document_id == document_id,
            Grant.grantee == grantee,
            col(Grant.revoked_at).is_(None),
            col(Grant.expires_at) > now,
        )
        if request_id is not None:
            query = query.where(Grant.request_id == request_id)
        return (await self.session.execute(query.order_by(col(Grant.expires_at)))).scalars().all()

    async def unrevoked_for_request(self, request_id: str) -> Sequence[Grant]:
        query = select(Grant).where(Grant.request_id == request_id, col(Grant.revoked_at).is_(None))
        return (await self.session.execute(query.with_for_update())).scalars().all()

    async def unrevoked_for_document(self, document_id: str) -> Sequence[Grant]:
        query = select(Grant).where(
            Grant.document_id == document_id, col(Grant.revoked_at).is_(None)
        )
        return (await self.session.execute(query)).scalars().all()

    async def request_state(self, request_id: str) -> RequestState | None:
        return (
            await self.session.execute(
                select(RequestState).where(RequestState.request_id == request_id)
            )
        ).scalar_one_or_none()
