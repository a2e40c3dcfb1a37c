"""HTTP API of a space: its staff roster, its KPIs and a streamed CSV export of its requests."""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from atlas_events.errors import error_responses
from atlas_events.service import RuntimeDep, SessionDep
from atlas_requests.auth import CurrentPrincipal
from atlas_requests.deps import Requests
from atlas_requests.errors import NotAllowed
from atlas_requests.queue.schemas import SpaceKpis
from atlas_requests.requests import access
from atlas_requests.requests.models import Request
from atlas_requests.requests.schemas import StaffPublic, StatusCode
from atlas_requests.requests.state import CLOSED_STATUSES, OPEN_STATUSES, Status

router = APIRouter(prefix="/v1/spaces/{atlas_id}", tags=["spaces"])
R = Request.__table__.c  # type: ignore[attr-defined]
EXPORT_COLUMNS = (
    "id", "atlas_id", "status", "prestation_code", "agent_id", "channel", "title", "assignee",
    "filed_by", "filed_by_role", "on_behalf", "case_id", "created_at", "submitted_at",
    "first_response_at", "closed_at", "sla_target_days", "sla_consumed_days", "sla_due_at",
    "sla_breached_at", "transferred_from", "transferred_to",
)  # fmt: skip


@router.get("/staff", responses=error_responses(NotAllowed))
async def list_staff(
    atlas_id: str, principal: CurrentPrincipal, service: Requests
) -> list[StaffPublic]:
    """The space's staff roster with each member's open requests (automatic assignment's pool)."""
    access.ensure_staff(principal, atlas_id, "read the staff roster")
    return [
        StaffPublic(atlas_id=atlas_id, staff_id=s, open_requests=n)
        for s, n in await service.repo.roster(atlas_id)
    ]


@router.put(
    "/staff/{staff_id}", status_code=status.HTTP_200_OK, responses=error_responses(NotAllowed)
)
async def add_staff(
    atlas_id: str, staff_id: str, principal: CurrentPrincipal, service: Requests
) -> StaffPublic:
    """Put a staff member on the roster (managers of the space, ops)."""
    access.ensure_manager(principal, atlas_id)
    await service.add_staff(atlas_id, staff_id, principal.sub)
    return StaffPublic(atlas_id=atlas_id, staff_id=staff_id, open_requests=0)


@router.delete(
    "/staff/{staff_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(NotAllowed),
)
async def remove_staff(
    atlas_id: str, staff_id: str, principal: CurrentPrincipal, service: Requests
) -> None:
    """Take a staff member off the roster; their requests stay assigned."""
    access.ensure_manager(principal, atlas_id)
    await service.remove_staff(atlas_id, staff_id)


@router.get("/kpis", responses=error_responses(NotAllowed))
async def space_kpis(
    atlas_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=3660)] = 90,
) -> SpaceKpis:
    """Backlog, time to first response, SLA compliance and channel mix (managers, ops)."""
    access.ensure_manager(principal, atlas_id)
    now = datetime.now(UTC)
    since = now - timedelta(days=days)
    open_rows = await session.execute(
        select(R.status, R.assignee, R.sla_breached_at).where(
            R.atlas_id == atlas_id, R.status.in_([s.value for s in OPEN_STATUSES])
        )
    )
    backlog: Counter[str] = Counter()
    unassigned = breached = 0
    for row in open_rows:
        backlog[row.status] += 1
        unassigned += row.assignee is None
        breached += row.sla_breached_at is not None
    window = (
        await session.execute(
            select(
                R.status, R.channel, R.submitted_at, R.first_response_at,
                R.sla_consumed_days, R.sla_target_days,
            ).where(R.atlas_id == atlas_id, R.submitted_at >= since)
        )
    ).all()  # fmt: skip
    responses = [
        (r.first_response_at - r.submitted_at).total_seconds() / 3600
        for r in window
        if r.first_response_at is not None
    ]
    closed = [
        r for r in window if r.status in CLOSED_STATUSES and r.status != Status.TRANSFEREE.value
    ]
    met = sum(r.sla_consumed_days <= r.sla_target_days for r in closed)
    return SpaceKpis(
        atlas_id=atlas_id,
        since=since,
        submitted=len(window),
        backlog={s.value: backlog.get(s.value, 0) for s in sorted(OPEN_STATUSES)},
        backlog_total=sum(backlog.values()),
        unassigned=unassigned,
        first_response_hours_avg=round(statistics.fmean(responses), 3) if responses else None,
        first_response_hours_median=round(statistics.median(responses), 3) if responses else None,
        sla_closed=len(closed),
        sla_met=met,
        sla_compliance=round(met / len(closed), 4) if closed else None,
        sla_breached_open=breached,
        channel_mix=dict(Counter(r.channel for r in window)),
    )


@router.get(
    "/requests.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **error_responses(NotAllowed)},
)
async def export_csv(
    atlas_id: str,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    status_: Annotated[list[StatusCode] | None, Query(alias="status")] = None,
) -> StreamingResponse:
    """Every request of the space as CSV, streamed from a server-side cursor (staff, ops)."""
    access.ensure_staff(principal, atlas_id, "export the queue")
    query = select(*(getattr(R, c) for c in EXPORT_COLUMNS)).where(R.atlas_id == atlas_id)
    if status_:
        query = query.where(R.status.in_(list(status_)))
    query = query.order_by(R.submitted_at, R.id)

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        async with runtime.db.engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=1000))
            async for chunk in result.partitions(1000):
                for row in chunk:
                    writer.writerow(["" if v is None else _cell(v) for v in row])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    filename = f"demandes-{atlas_id}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _cell(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
