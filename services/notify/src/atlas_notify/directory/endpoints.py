"""Directory API: agents' contact details and the spaces' staff."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from atlas_events.auth import AUTH_RESPONSES, Forbidden, ensure_agent_or_ops
from atlas_events.errors import NotFound, error_responses
from atlas_events.service import SessionDep
from atlas_notify.auth import CurrentPrincipal, Principal, Role, require_roles, staff_of
from atlas_notify.directory.models import (
    Contact,
    ContactPublic,
    ContactUpdate,
    StaffMember,
    StaffMemberBase,
    StaffMemberPublic,
)
from atlas_notify.directory.repository import DirectoryRepository

router = APIRouter(tags=["directory"], responses=AUTH_RESPONSES)

AgentIdPath = Annotated[str, Path(pattern=r"^[0-9]{10}$")]


def _contact(row: Contact) -> ContactPublic:
    return ContactPublic.model_validate(row, from_attributes=True)


def _staff(row: StaffMember) -> StaffMemberPublic:
    return StaffMemberPublic.model_validate(row, from_attributes=True)


@router.get(
    "/v1/contacts/{agent_id}",
    summary="An agent's contact details",
    responses=error_responses(NotFound),
)
async def get_contact(
    agent_id: AgentIdPath, session: SessionDep, principal: CurrentPrincipal
) -> ContactPublic:
    """The agent themself or ops."""
    ensure_agent_or_ops(principal, agent_id)
    row = await DirectoryRepository(session).contact(agent_id)
    if row is None:
        raise NotFound(f"no contact details for agent {agent_id}")
    return _contact(row)


@router.put("/v1/contacts/{agent_id}", summary="Set an agent's contact details")
async def put_contact(
    agent_id: AgentIdPath, body: ContactUpdate, session: SessionDep, principal: CurrentPrincipal
) -> ContactPublic:
    """HR systems, ops, or the agent themself; fields left out keep their value."""
    if not (principal.has_role(Role.HR_SYSTEM, Role.ADMIN) or principal.is_ops):
        ensure_agent_or_ops(principal, agent_id)
    row = await DirectoryRepository(session).upsert_contact(
        agent_id, source=f"api:{principal.sub}", **body.model_dump()
    )
    return _contact(row)


@router.get(
    "/v1/spaces/{atlas_id}/staff",
    summary="The staff directory of a space",
    dependencies=[Depends(staff_of("atlas_id"))],
)
async def list_staff(atlas_id: str, session: SessionDep) -> list[StaffMemberPublic]:
    """Active staff members of the space."""
    return [_staff(m) for m in await DirectoryRepository(session).staff_of(atlas_id)]


@router.put("/v1/spaces/{atlas_id}/staff/{staff_id}", summary="Add or change a staff member")
async def put_staff(
    atlas_id: str,
    staff_id: str,
    body: StaffMemberBase,
    session: SessionDep,
    _: Annotated[Principal, Depends(require_roles(Role.ADMIN))],
) -> StaffMemberPublic:
    """Admins and ops maintain the directory."""
    if body.staff_id != staff_id:
        raise Forbidden("staff_id in the body must match the path")
    return _staff(await DirectoryRepository(session).put_staff(atlas_id, body))
