"""Queries on documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from atlas_vault.documents.models import LIVE_STATUSES, Document, DocumentStatus
from atlas_vault.grants.models import Grant, RequestState


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, document_id: str, *, for_update: bool = False) -> Document | None:
        query = select(Document).where(Document.id == document_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def usage_bytes(self, owner_agent_id: str) -> int:
        """Plaintext bytes an owner keeps (quarantined, available or corrupted documents)."""
        total = await self.session.scalar(
            select(func.coalesce(func.sum(Document.size_bytes), 0)).where(
                Document.owner_agent_id == owner_agent_id,
                col(Document.status).in_(LIVE_STATUSES),
            )
        )
        return int(total or 0)

    async def for_owner(self, owner_agent_id: str, *, include_gone: bool) -> Sequence[Document]:
        query = select(Document).where(Document.owner_agent_id == owner_agent_id)
        if not include_gone:
            query = query.where(col(Document.status).in_(LIVE_STATUSES))
        query = query.order_by(col(Document.deposited_at).desc(), col(Document.id))
        return (await self.session.execute(query)).scalars().all()

    async def granted_to(self, grantee: str, now: datetime) -> Sequence[Document]:
        """Documents a staff member holds a live grant on."""
        live = (
            select(Grant.document_id)
            .outerjoin(RequestState, col(RequestState.request_id) == col(Grant.request_id))
            .where(
                Grant.grantee == grantee,
                col(Grant.revoked_at).is_(None),
                col(Grant.expires_at) > now,
                func.coalesce(RequestState.closed, False).is_(False),
            )
        )
        query = (
            select(Document)
            .where(col(Document.id).in_(live), Document.status == DocumentStatus.AVAILABLE)
            .order_by(col(Document.id))
        )
        return (await self.session.execute(query)).scalars().all()

    async def counts(self, owner_agent_id: str | None) -> dict[str, int]:
        query = select(Document.status, func.count()).group_by(Document.status)
        if owner_agent_id is not None:
            query = query.where(Document.owner_agent_id == owner_agent_id)
        rows = (await self.session.execute(query)).all()
        return {str(status): int(n) for status, n in rows}

    async def totals(self) -> tuple[int, int]:
        """(owners holding live documents, live plaintext bytes) across the vault."""
        row = (
            await self.session.execute(
                select(
                    func.count(func.distinct(Document.owner_agent_id)),
                    func.coalesce(func.sum(Document.size_bytes), 0),
                ).where(col(Document.status).in_(LIVE_STATUSES))
            )
        ).one()
        return int(row[0]), int(row[1])

    async def with_status(
        self, statuses: Sequence[DocumentStatus], *, after: str, limit: int
    ) -> Sequence[Document]:
        query = (
            select(Document)
            .where(col(Document.status).in_(statuses), col(Document.id) > after)
            .order_by(col(Document.id))
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def wrapped_below(
        self, kek_id: str, version: int, *, after: str, limit: int
    ) -> Sequence[Document]:
        query = (
            select(Document)
            .where(
                col(Document.wrapped_key).is_not(None),
                Document.kek_id == kek_id,
                col(Document.kek_version) < version,
                col(Document.id) > after,
            )
            .order_by(col(Document.id))
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def count_wrapped_below(self, kek_id: str, version: int) -> int:
        total = await self.session.scalar(
            select(func.count()).where(
                col(Document.wrapped_key).is_not(None),
                Document.kek_id == kek_id,
                col(Document.kek_version) < version,
            )
        )
        return int(total or 0)
