"""Read API of the missions: one mission with its cases, milestones and timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from atlas_events.auth import AUTH_RESPONSES, Forbidden, Principal, Role, ensure_staff_of
from atlas_events.errors import error_responses
from atlas_events.service import SessionDep
from atlas_mobility.auth import CurrentPrincipal
from atlas_mobility.errors import MissionNotFound
from atlas_mobility.missions.models import Mission
from atlas_mobility.missions.repository import MissionRepository
from atlas_mobility.missions.schemas import (
    MissionCasePublic,
    MissionMilestonePublic,
    MissionPublic,
    MissionSummary,
    MissionTimelineEntryPublic,
)
from atlas_mobility.missions.service import request_key

router = APIRouter(tags=["missions"])


def ensure_can_read(principal: Principal, mission: Mission) -> None:
    """Ops read all; an agent their own; staff and managers those of their space."""
    if principal.is_ops:
        return
    if principal.has_role(Role.AGENT) and principal.sub == mission.agent_id:
        return
    if principal.has_role(Role.STAFF, Role.MANAGER) and mission.atlas_id is not None:
        ensure_staff_of(principal, mission.atlas_id)
        return
    raise Forbidden("only the agent, the home space's staff and ops may read this mission")


@router.get(
    "/v1/missions",
    response_model=list[MissionSummary],
    summary="Missions of a space or an agent",
    responses=AUTH_RESPONSES,
)
async def list_missions(
    session: SessionDep,
    principal: CurrentPrincipal,
    atlas_id: Annotated[str | None, Query(max_length=64)] = None,
    agent_id: Annotated[str | None, Query(pattern=r"^[0-9]{10}$")] = None,
) -> list[MissionSummary]:
    """Ops any (filtered), staff and managers their space's, an agent their own."""
    if principal.is_ops:
        pass
    elif principal.has_role(Role.STAFF, Role.MANAGER):
        if principal.atlas_id is None:
            raise Forbidden("the token names no atlas_id, so it is scoped to no ATLAS space")
        if atlas_id not in (None, principal.atlas_id):
            ensure_staff_of(principal, atlas_id)
        atlas_id = principal.atlas_id
    elif principal.has_role(Role.AGENT):
        agent_id = principal.sub
    else:
        raise Forbidden("requires role agent, staff, manager or ops")
    found = await MissionRepository(session).search(atlas_id=atlas_id, agent_id=agent_id)
    return [
        MissionSummary(
            mission_id=m.mission_id,
            revision=m.revision,
            agent_id=m.agent_id,
            status=m.status,
            kind=m.kind,
            atlas_id=m.atlas_id,
            departure_date=m.departure_date,
            planned_return_date=m.planned_return_date,
            return_date=m.return_date,
        )
        for m in found
    ]


@router.get(
    "/v1/missions/{mission_id:path}",
    response_model=MissionPublic,
    summary="One mission",
    responses={**AUTH_RESPONSES, **error_responses(MissionNotFound)},
)
async def get_mission(
    mission_id: str, session: SessionDep, principal: CurrentPrincipal
) -> MissionPublic:
    """A mission with its departure and return cases, their milestones and its timeline."""
    repo = MissionRepository(session)
    mission = await repo.get(mission_id)
    if mission is None:
        raise MissionNotFound(f"no mission {mission_id}")
    ensure_can_read(principal, mission)
    cases = await repo.cases(mission_id)
    milestones = await repo.milestones([c.case_id for c in cases])
    timeline = await repo.timeline(mission_id)
    return MissionPublic(
        mission_id=mission.mission_id,
        revision=mission.revision,
        agent_id=mission.agent_id,
        status=mission.status,
        kind=mission.kind,
        atlas_id=mission.atlas_id,
        home_commune_insee=mission.home_commune_insee,
        departure_date=mission.departure_date,
        planned_return_date=mission.planned_return_date,
        return_date=mission.return_date,
        return_flagged_at=mission.return_flagged_at,
        cancel_reason=mission.cancel_reason,
        cases=[
            MissionCasePublic(
                case_id=c.case_id,
                kind=c.kind,
                status=c.status,
                atlas_id=c.atlas_id,
                prestation_codes=list(c.prestation_codes),
                request_keys=[request_key(c.case_id, p) for p in c.prestation_codes],
                reference_date=c.reference_date,
                milestones=[
                    MissionMilestonePublic(code=m.code, label=m.label, due_date=m.due_date)
                    for m in milestones
                    if m.case_id == c.case_id
                ],
            )
            for c in cases
        ],
        timeline=[
            MissionTimelineEntryPublic(
                seq=i,
                revision=e.revision,
                event_type=e.event_type,
                event_id=e.event_id,
                outcome=e.outcome,
                summary=e.summary,
                recorded_at=e.recorded_at,
            )
            for i, e in enumerate(timeline, start=1)
        ],
    )
