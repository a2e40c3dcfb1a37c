"""Queries of the requests domain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from atlas_events.db import among
from atlas_requests.requests.models import (
    Request,
    RequestAssignment,
    RequestMessage,
    RequestTransition,
    StaffMember,
)
from atlas_requests.requests.state import CLOCK_RUNNING, OPEN_STATUSES

R = Request.__table__.c  # type: ignore[attr-defined]
SORTS = {
    "submitted_at": R.submitted_at,
    "sla_due_at": R.sla_due_at,
    "updated_at": R.updated_at,
    "created_at": R.created_at,
    "status": R.status,
}


@dataclass
class QueueFilter:
    """What the queue is filtered on; scoping by role is applied by the service."""

    atlas_ids: Sequence[str] | None = None
    visible_to_agent: str | None = None
    statuses: Sequence[str] = ()
    prestation_code: str | None = None
    channel: str | None = None
    assignee: str | None = None
    unassigned: bool = False
    sla_at_risk: bool | None = None
    agent_id: str | None = None
    now: datetime | None = None
    extra: list[ColumnElement[bool]] = field(default_factory=list)

    def clauses(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = list(self.extra)
        if self.atlas_ids is not None:
            where.append(R.atlas_id.in_(list(self.atlas_ids)))
        if self.visible_to_agent is not None:
            who = self.visible_to_agent
            where.append(or_(R.agent_id == who, R.filed_by == who))
        if self.statuses:
            where.append(R.status.in_(list(self.statuses)))
        if self.prestation_code:
            where.append(R.prestation_code == self.prestation_code)
        if self.channel:
            where.append(R.channel == self.channel)
        if self.assignee:
            where.append(R.assignee == self.assignee)
        if self.unassigned:
            where.append(R.assignee.is_(None))
        if self.agent_id:
            where.append(R.agent_id == self.agent_id)
        if self.sla_at_risk is not None:
            risky = and_(
                R.status.in_([s.value for s in CLOCK_RUNNING]),
                or_(R.sla_warn_at <= self.now, R.sla_warned_at.is_not(None)),
            )
            where.append(risky if self.sla_at_risk else ~risky)
        return where


class RequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, request_id: str, *, for_update: bool = False) -> Request | None:
        return await self.session.get(Request, request_id, with_for_update=for_update or None)

    async def by_cases(self, case_ids: Sequence[str]) -> list[Request]:
        """The requests of several cases, locked in one ordered query (a batch of commands)."""
        query = (
            select(Request)
            .where(among(self.session, R.case_id, case_ids))
            .order_by(R.case_id, R.created_at, R.id)
            .with_for_update()
        )
        return list((await self.session.execute(query)).scalars())

    async def by_case(self, case_id: str) -> list[Request]:
        query = select(Request).where(R.case_id == case_id).order_by(R.created_at)
        return list((await self.session.execute(query.with_for_update())).scalars())

    def queue_query(self, f: QueueFilter) -> Select[Any]:
        return select(Request).where(*f.clauses())

    async def page(
        self, f: QueueFilter, *, sort: str, descending: bool, offset: int, limit: int
    ) -> tuple[list[Request], int]:
        column = SORTS[sort]
        order = [column.desc().nulls_last() if descending else column.asc().nulls_last()]
        order.append(R.id)
        rows = (
            await self.session.execute(
                select(Request).where(*f.clauses()).order_by(*order).offset(offset).limit(limit)
            )
        ).scalars()
        total = await self.session.scalar(
            select(func.count()).select_from(Request).where(*f.clauses())
        )
        return list(rows), int(total or 0)

    async def transitions(self, request_id: str) -> list[RequestTransition]:
        t = RequestTransition.__table__.c  # type: ignore[attr-defined]
        query = select(RequestTransition).where(t.request_id == request_id).order_by(t.id)
        return list((await self.session.execute(query)).scalars())

    async def assignments(self, request_id: str) -> list[RequestAssignment]:
        a = RequestAssignment.__table__.c  # type: ignore[attr-defined]
        query = select(RequestAssignment).where(a.request_id == request_id).order_by(a.id)
        return list((await self.session.execute(query)).scalars())

    async def messages(self, request_id: str) -> list[RequestMessage]:
        m = RequestMessage.__table__.c  # type: ignore[attr-defined]
        query = select(RequestMessage).where(m.request_id == request_id)
        return list((await self.session.execute(query.order_by(m.posted_at, m.id))).scalars())

    async def roster(self, atlas_id: str) -> list[tuple[str, int]]:
        """Staff of a space with their open request count, least loaded first."""
        s = StaffMember.__table__.c  # type: ignore[attr-defined]
        load = (
            select(R.assignee, func.count().label("n"))
            .where(R.atlas_id == atlas_id, R.status.in_([x.value for x in OPEN_STATUSES]))
            .group_by(R.assignee)
            .subquery()
        )
        n = func.coalesce(load.c.n, 0)
        query = (
            select(s.staff_id, n)
            .select_from(StaffMember.__table__)  # type: ignore[attr-defined]
            .outerjoin(load, load.c.assignee == s.staff_id)
            .where(s.atlas_id == atlas_id)
            .order_by(n, s.staff_id)
        )
        return [(row[0], int(row[1])) for row in await self.session.execute(query)]

    async def staff_member(self, atlas_id: str, staff_id: str) -> StaffMember | None:
        return await self.session.get(StaffMember, (atlas_id, staff_id))

    async def sla_due(self, now: datetime, limit: int) -> list[Request]:
        """Running requests whose warning or deadline instant has come and is not yet reported."""
        query = (
            select(Request)
            .where(
                R.status.in_([s.value for s in CLOCK_RUNNING]),
                or_(
                    and_(R.sla_warned_at.is_(None), R.sla_warn_at <= now),
                    and_(R.sla_breached_at.is_(None), R.sla_due_at <= now),
                ),
            )
            .order_by(R.sla_warn_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(query)).scalars())
