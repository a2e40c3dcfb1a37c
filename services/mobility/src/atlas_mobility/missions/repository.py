"""Queries of the missions read side."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_mobility.missions.models import (
    Mission,
    MissionCase,
    MissionMilestone,
    MissionTimelineEntry,
)


class MissionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, mission_id: str) -> Mission | None:
        return await self.session.get(Mission, mission_id)

    async def search(
        self, *, atlas_id: str | None = None, agent_id: str | None = None, limit: int = 200
    ) -> list[Mission]:
        """Missions of a space or an agent, next departures first."""
        query = select(Mission)
        if atlas_id is not None:
            query = query.where(col(Mission.atlas_id) == atlas_id)
        if agent_id is not None:
            query = query.where(col(Mission.agent_id) == agent_id)
        query = query.order_by(col(Mission.departure_date), col(Mission.mission_id)).limit(limit)
        return list((await self.session.scalars(query)).all())

    async def cases(self, mission_id: str) -> list[MissionCase]:
        rows = await self.session.scalars(
            select(MissionCase)
            .where(col(MissionCase.mission_id) == mission_id)
            .order_by(col(MissionCase.opened_at), col(MissionCase.case_id))
        )
        return list(rows.all())

    async def milestones(self, case_ids: list[str]) -> list[MissionMilestone]:
        rows = await self.session.scalars(
            select(MissionMilestone)
            .where(col(MissionMilestone.case_id).in_(case_ids))
            .order_by(col(MissionMilestone.due_date), col(MissionMilestone.code))
        )
        return list(rows.all())

    async def timeline(self, mission_id: str) -> list[MissionTimelineEntry]:
        rows = await self.session.scalars(
            select(MissionTimelineEntry)
            .where(col(MissionTimelineEntry.mission_id) == mission_id)
            .order_by(col(MissionTimelineEntry.id))
        )
        return list(rows.all())
