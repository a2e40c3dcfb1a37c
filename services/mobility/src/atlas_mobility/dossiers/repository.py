"""Queries on dossiers, their cases and their timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_events.db import bulk_insert
from atlas_mobility.cases.models import HandlerCase, Milestone
from atlas_mobility.db import table_of
from atlas_mobility.dossiers.models import Dossier, TimelineEntry


class DossierRepository:
    """Reads and writes dossiers in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._timeline: list[dict[str, Any]] = []

    async def get(self, mutation_id: str, *, for_update: bool = False) -> Dossier | None:
        return await self.session.get(Dossier, mutation_id, with_for_update=for_update)

    async def by_agent(self, agent_id: str, *, destination: str | None = None) -> list[Dossier]:
        query = select(Dossier).where(col(Dossier.agent_id) == agent_id)
        if destination is not None:
            query = query.where(col(Dossier.destination_atlas_id) == destination)
        return list((await self.session.scalars(query.order_by(col(Dossier.report_date)))).all())

    async def arrivals(self, atlas_id: str, start: date, end: date) -> list[Dossier]:
        query = (
            select(Dossier)
            .where(
                col(Dossier.destination_atlas_id) == atlas_id,
                col(Dossier.report_date) >= start,
                col(Dossier.report_date) <= end,
                col(Dossier.cancelled_at).is_(None),
            )
            .order_by(col(Dossier.report_date), col(Dossier.mutation_id))
        )
        return list((await self.session.scalars(query)).all())

    async def cases_of(self, mutation_ids: Sequence[str]) -> dict[str, list[HandlerCase]]:
        result: dict[str, list[HandlerCase]] = {m: [] for m in mutation_ids}
        if not mutation_ids:
            return result
        cases = await self.session.scalars(
            select(HandlerCase)
            .where(col(HandlerCase.mutation_id).in_(mutation_ids))
            .order_by(col(HandlerCase.case_id))
        )
        for case in cases:
            result[case.mutation_id].append(case)
        return result

    async def milestones_of(self, case_ids: Sequence[str]) -> dict[str, list[Milestone]]:
        result: dict[str, list[Milestone]] = {c: [] for c in case_ids}
        if not case_ids:
            return result
        rows = await self.session.scalars(
            select(Milestone)
            .where(col(Milestone.case_id).in_(case_ids))
            .order_by(col(Milestone.due_date), col(Milestone.child_ref), col(Milestone.code))
        )
        for milestone in rows:
            result[milestone.case_id].append(milestone)
        return result

    async def timeline(self, mutation_id: str) -> list[TimelineEntry]:
        rows = await self.session.scalars(
            select(TimelineEntry)
            .where(col(TimelineEntry.mutation_id) == mutation_id)
            .order_by(col(TimelineEntry.id))
        )
        return list(rows.all())

    def record(
        self,
        mutation_id: str,
        *,
        event_type: str,
        outcome: str,
        summary: str,
        revision: int | None = None,
        event_id: str | None = None,
        changes: Sequence[str] = (),
        occurred_at: datetime | None = None,
    ) -> None:
        """Queue an entry for the dossier's timeline; `flush` writes the queue in order."""
        self._timeline.append(
            {
                "mutation_id": mutation_id,
                "revision": revision,
                "event_id": event_id,
                "event_type": event_type,
                "outcome": outcome,
                "summary": summary[:2000],
                "changes": list(changes),
                "occurred_at": occurred_at,
                "recorded_at": datetime.now(UTC),
            }
        )

    async def flush(self) -> None:
        """Insert the queued timeline entries with one statement (ids follow the queue order)."""
        if self._timeline:
            rows, self._timeline = self._timeline, []
            await bulk_insert(self.session, table_of(TimelineEntry), rows)
