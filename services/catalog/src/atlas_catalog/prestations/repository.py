"""Queries on prestations and their versions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_catalog.prestations.models import Prestation, PrestationVersion


class PrestationRepository:
    """Reads and writes prestations in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, code: str, *, for_update: bool = False) -> Prestation | None:
        query = select(Prestation).where(Prestation.code == code)  # type: ignore[arg-type]
        if for_update:
            query = query.with_for_update()
        result = await self.session.execute(query.execution_options(populate_existing=True))
        return result.scalar_one_or_none()

    async def all(self) -> Sequence[Prestation]:
        result = await self.session.execute(select(Prestation).order_by(Prestation.code))
        return result.scalars().all()

    async def active(self) -> Sequence[Prestation]:
        result = await self.session.execute(
            select(Prestation)
            .where(Prestation.status == "active")  # type: ignore[arg-type]
            .order_by(Prestation.code)
        )
        return result.scalars().all()

    async def versions(self, code: str) -> Sequence[PrestationVersion]:
        result = await self.session.execute(
            select(PrestationVersion)
            .where(PrestationVersion.code == code)  # type: ignore[arg-type]
            .order_by(PrestationVersion.version)  # type: ignore[arg-type]
        )
        return result.scalars().all()

    async def version(self, code: str, version: int) -> PrestationVersion | None:
        return await self.session.get(PrestationVersion, (code, version))

    def add(self, prestation: Prestation, change: str) -> PrestationVersion:
        """Stage the prestation and record its current state as a kept version."""
        self.session.add(prestation)
        kept = PrestationVersion(
            code=prestation.code,
            version=prestation.version,
            change=change,
            snapshot=version_snapshot(prestation),
            changed_by=prestation.updated_by,
            changed_at=prestation.updated_at,
        )
        self.session.add(kept)
        return kept


def version_snapshot(prestation: Prestation) -> dict[str, object]:
    """Everything a version holds, as JSON."""
    return {
        "code": prestation.code,
        "version": prestation.version,
        "status": prestation.status,
        "title": prestation.title,
        "summary": prestation.summary,
        "keywords": list(prestation.keywords),
        "domain": prestation.domain,
        "provider": prestation.provider,
        "audiences": list(prestation.audiences),
        "channels": list(prestation.channels),
        "documents": list(prestation.documents),
        "sla_days": prestation.sla_days,
        "essential": prestation.essential,
        "crisis_only": prestation.crisis_only,
        "withdrawn_reason": prestation.withdrawn_reason,
    }
