"""Queries on the journal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from atlas_vault.journal.models import JournalEntry, JournalHead


class JournalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_head(self) -> JournalHead:
        """The head row, locked until the transaction ends (appends are serialised)."""
        head = (
            await self.session.execute(
                select(JournalHead).where(JournalHead.id == 1).with_for_update()
            )
        ).scalar_one_or_none()
        if head is None:
            raise RuntimeError("journal head row missing: migration 0002 not applied?")
        return head

    async def head(self) -> JournalHead | None:
        return (
            await self.session.execute(select(JournalHead).where(JournalHead.id == 1))
        ).scalar_one_or_none()

    async def for_owner(
        self, owner_agent_id: str, *, document_id: str | None, after: int, limit: int
    ) -> Sequence[JournalEntry]:
        query = select(JournalEntry).where(
            JournalEntry.owner_agent_id == owner_agent_id, col(JournalEntry.seq) > after
        )
        if document_id is not None:
            query = query.where(JournalEntry.document_id == document_id)
        query = query.order_by(col(JournalEntry.seq)).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def stream_all(self, batch: int = 1000) -> AsyncIterator[JournalEntry]:
        """Every entry in seq order, in batches (the verifier reads the whole chain)."""
        after = -1
        while True:
            rows = (
                (
                    await self.session.execute(
                        select(JournalEntry)
                        .where(col(JournalEntry.seq) > after)
                        .order_by(col(JournalEntry.seq))
                        .limit(batch)
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                return
            for row in rows:
                yield row
            after = rows[-1].seq
