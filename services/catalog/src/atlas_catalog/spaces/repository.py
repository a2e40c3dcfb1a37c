"""Queries on spaces, the communes they cover, départements and communes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_catalog.spaces.models import AtlasSpace, Commune, Departement, SpaceCommune


class SpaceRepository:
    """Reads spaces and the coverage tables in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, atlas_id: str, *, for_update: bool = False) -> AtlasSpace | None:
        query = select(AtlasSpace).where(AtlasSpace.atlas_id == atlas_id)  # type: ignore[arg-type]
        if for_update:
            query = query.with_for_update()
        result = await self.session.execute(query.execution_options(populate_existing=True))
        return result.scalar_one_or_none()

    async def all(self, *, for_update: bool = False) -> Sequence[AtlasSpace]:
        query = select(AtlasSpace).order_by(AtlasSpace.atlas_id)
        if for_update:
            query = query.with_for_update()
        result = await self.session.execute(query.execution_options(populate_existing=True))
        return result.scalars().all()

    async def by_commune(self, commune_insee: str) -> AtlasSpace | None:
        result = await self.session.execute(
            select(AtlasSpace).where(AtlasSpace.commune_insee == commune_insee)  # type: ignore[arg-type]
        )
        return result.scalar_one_or_none()

    async def covering(self, commune_insee: str) -> str | None:
        result = await self.session.execute(
            select(SpaceCommune.atlas_id).where(SpaceCommune.commune_insee == commune_insee)  # type: ignore[call-overload]
        )
        atlas_id: str | None = result.scalar_one_or_none()
        return atlas_id

    async def covers(self, atlas_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
        """atlas_id → the communes it covers explicitly (sorted)."""
        query = select(SpaceCommune.commune_insee, SpaceCommune.atlas_id)  # type: ignore[call-overload]
        if atlas_ids is not None:
            query = query.where(SpaceCommune.atlas_id.in_(atlas_ids))  # type: ignore[attr-defined]
        result: dict[str, list[str]] = defaultdict(list)
        for commune, atlas_id in (await self.session.execute(query)).all():
            result[atlas_id].append(commune)
        return {k: sorted(v) for k, v in result.items()}

    async def departements(self) -> Sequence[Departement]:
        result = await self.session.execute(select(Departement).order_by(Departement.code))
        return result.scalars().all()

    async def departement(self, code: str) -> Departement | None:
        return await self.session.get(Departement, code)

    async def defaults(self) -> dict[str, list[str]]:
        """atlas_id → the départements it is the default space of."""
        result: dict[str, list[str]] = defaultdict(list)
        for departement in await self.departements():
            if departement.default_atlas_id:
                result[departement.default_atlas_id].append(departement.code)
        return dict(result)

    async def commune(self, code: str) -> Commune | None:
        return await self.session.get(Commune, code)
