"""Read API of the dossiers: one dossier, an agent's dossiers, its timeline, a space's arrivals."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from atlas_events.auth import AUTH_RESPONSES, Forbidden, Principal, Role, ensure_staff_of
from atlas_events.errors import error_responses
from atlas_events.service import SessionDep
from atlas_mobility.auth import CurrentPrincipal, staff_of
from atlas_mobility.cases.models import HandlerCase, Milestone
from atlas_mobility.cases.reminders import milestone_status
from atlas_mobility.deps import ContextDep
from atlas_mobility.dossiers.models import Dossier
from atlas_mobility.dossiers.repository import DossierRepository
from atlas_mobility.dossiers.schemas import (
    ArrivalsPublic,
    CasePublic,
    DossierPublic,
    MilestonePublic,
    TimelineEntryPublic,
    TimelinePublic,
)
from atlas_mobility.dossiers.status import dossier_status
from atlas_mobility.errors import DossierNotFound, MissingParameter

router = APIRouter(tags=["dossiers"])


def ensure_can_read(principal: Principal, dossier: Dossier) -> None:
    """Ops read all; an agent their own; staff and managers those arriving at their space."""
    if principal.is_ops:
        return
    if principal.has_role(Role.AGENT) and principal.sub == dossier.agent_id:
        return
    if principal.has_role(Role.STAFF, Role.MANAGER) and dossier.destination_atlas_id is not None:
        ensure_staff_of(principal, dossier.destination_atlas_id)
        return
    raise Forbidden("only the agent, the destination space's staff and ops may read this dossier")


async def present(
    repo: DossierRepository, dossiers: Sequence[Dossier], today: date
) -> list[DossierPublic]:
    """Dossiers with their cases and milestones, statuses derived."""
    cases = await repo.cases_of([d.mutation_id for d in dossiers])
    milestones = await repo.milestones_of([c.case_id for cs in cases.values() for c in cs])
    result = []
    for dossier in dossiers:
        own = cases[dossier.mutation_id]
        result.append(
            DossierPublic(
                mutation_id=dossier.mutation_id,
                revision=dossier.revision,
                agent_id=dossier.agent_id,
                status=dossier_status(dossier, own),
                destination_atlas_id=dossier.destination_atlas_id,
                destination_commune_insee=dossier.destination_commune_insee,
                destination_zone=dossier.destination_zone,
                origin_commune_insee=dossier.origin_commune_insee,
                origin_atlas_id=dossier.origin_atlas_id,
                report_date=dossier.report_date,
                announced_at=dossier.announced_at,
                anticipation_days=(
                    (dossier.report_date - dossier.announced_at.date()).days
                    if dossier.report_date is not None
                    else None
                ),
                cancelled_at=dossier.cancelled_at,
                cancel_reason=dossier.cancel_reason,
                closed_at=dossier.closed_at,
                cases=[_case(c, milestones[c.case_id], today) for c in own],
            )
        )
    return result


def _case(case: HandlerCase, milestones: Sequence[Milestone], today: date) -> CasePublic:
    return CasePublic(
        case_id=case.case_id,
        kind=case.kind,
        status=case.status,
        atlas_id=case.atlas_id,
        request_id=case.request_id,
        request_status=case.request_status,
        outcome=case.outcome,
        details=case.details,
        milestones=[
            MilestonePublic(
                code=m.code,
                label=m.label,
                due_date=m.due_date,
                status=milestone_status(m, case.status, today),
                urgent=m.urgent,
                child_ref=m.child_ref or None,
            )
            for m in milestones
        ],
    )


async def _readable(repo: DossierRepository, principal: Principal, mutation_id: str) -> Dossier:
    dossier = await repo.get(mutation_id)
    if dossier is None:
        raise DossierNotFound(f"no dossier for mutation {mutation_id}")
    ensure_can_read(principal, dossier)
    return dossier


@router.get(
    "/v1/dossiers",
    response_model=list[DossierPublic],
    summary="An agent's dossiers",
    responses={**AUTH_RESPONSES, **error_responses(MissingParameter)},
)
async def list_dossiers(
    session: SessionDep,
    context: ContextDep,
    principal: CurrentPrincipal,
    agent_id: Annotated[str | None, Query(pattern=r"^[0-9]{10}$")] = None,
) -> list[DossierPublic]:
    """An agent's dossiers: agents their own, staff those arriving at their space, ops any."""
    repo = DossierRepository(session)
    if agent_id is None:
        if principal.has_role(Role.AGENT) and not principal.is_ops:
            agent_id = principal.sub
        else:
            raise MissingParameter("agent_id is required")
    if principal.is_ops or (principal.has_role(Role.AGENT) and principal.sub == agent_id):
        dossiers = await repo.by_agent(agent_id)
    elif principal.has_role(Role.STAFF, Role.MANAGER):
        if principal.atlas_id is None:
            raise Forbidden("the token names no atlas_id, so it is scoped to no ATLAS space")
        dossiers = await repo.by_agent(agent_id, destination=principal.atlas_id)
    else:
        raise Forbidden("an agent may only read their own dossiers")
    return await present(repo, dossiers, context.today())


@router.get(
    "/v1/dossiers/{mutation_id:path}/timeline",
    response_model=TimelinePublic,
    summary="A dossier's timeline",
    responses={**AUTH_RESPONSES, **error_responses(DossierNotFound)},
)
async def get_timeline(
    mutation_id: str, session: SessionDep, principal: CurrentPrincipal
) -> TimelinePublic:
    """Every event applied to the dossier (or ignored as duplicate or stale), in order."""
    repo = DossierRepository(session)
    await _readable(repo, principal, mutation_id)
    entries = await repo.timeline(mutation_id)
    return TimelinePublic(
        mutation_id=mutation_id,
        entries=[
            TimelineEntryPublic(
                seq=i,
                revision=e.revision,
                event_type=e.event_type,
                event_id=e.event_id,
                outcome=e.outcome,
                summary=e.summary,
                changes=e.changes,
                occurred_at=e.occurred_at,
                recorded_at=e.recorded_at,
            )
            for i, e in enumerate(entries, start=1)
        ],
    )


@router.get(
    "/v1/dossiers/{mutation_id:path}",
    response_model=DossierPublic,
    summary="One dossier",
    responses={**AUTH_RESPONSES, **error_responses(DossierNotFound)},
)
async def get_dossier(
    mutation_id: str, session: SessionDep, context: ContextDep, principal: CurrentPrincipal
) -> DossierPublic:
    """The dossier of a mutation, with its cases and milestones."""
    repo = DossierRepository(session)
    dossier = await _readable(repo, principal, mutation_id)
    (public,) = await present(repo, [dossier], context.today())
    return public


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@router.get(
    "/v1/spaces/{atlas_id}/arrivals",
    response_model=ArrivalsPublic,
    summary="Upcoming arrivals at a space",
    responses=AUTH_RESPONSES,
)
async def arrivals(
    atlas_id: str,
    session: SessionDep,
    context: ContextDep,
    _: Annotated[Principal, Depends(staff_of("atlas_id"))],
    months: Annotated[int, Query(ge=1, le=24)] = 6,
) -> ArrivalsPublic:
    """Dossiers whose agent reports at this space within `months`, with their cases' status."""
    repo = DossierRepository(session)
    start = context.today()
    end = add_months(start, months)
    dossiers = await repo.arrivals(atlas_id, start, end)
    return ArrivalsPublic(
        atlas_id=atlas_id,
        start=start,
        end=end,
        dossiers=await present(repo, dossiers, start),
    )
