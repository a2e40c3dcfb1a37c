"""Crisis mode routes: the national switch (ops, admin) and a space's (also its manager)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from atlas_catalog.auth import CurrentPrincipal, Principal, Role, require_roles
from atlas_catalog.context import ContextDep
from atlas_catalog.crisis.schemas import CrisisOverview, CrisisSwitch
from atlas_catalog.crisis.service import CrisisService
from atlas_catalog.errors import SpaceNotFound
from atlas_catalog.spaces.models import AtlasSpacePublic
from atlas_events.auth import AUTH_RESPONSES, Forbidden
from atlas_events.errors import error_responses
from atlas_events.service import RuntimeDep, SessionDep

router = APIRouter(tags=["crisis"])

Operator = Annotated[Principal, Depends(require_roles(Role.OPS, Role.ADMIN))]
AtlasIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


def _service(session: SessionDep, runtime: RuntimeDep, context: ContextDep) -> CrisisService:
    return CrisisService(session, runtime.outbox, context.views)


ServiceDep = Annotated[CrisisService, Depends(_service)]


@router.get(
    "/v1/crisis",
    response_model=CrisisOverview,
    summary="Crisis mode: the national switch and the spaces in crisis",
    responses=AUTH_RESPONSES,
)
async def get_crisis(_: CurrentPrincipal, service: ServiceDep) -> CrisisOverview:
    """Whether national crisis mode is on, and which spaces switched their own on."""
    return await service.overview()


@router.put(
    "/v1/crisis",
    response_model=CrisisOverview,
    summary="Switch national crisis mode (ops, admin)",
    responses=AUTH_RESPONSES,
)
async def switch_national_crisis(
    body: CrisisSwitch, operator: Operator, service: ServiceDep
) -> CrisisOverview:
    """On: every space suspends on-site channels of non-essential prestations and offers the
    crisis-only ones; off restores them. Every space's snapshot is published."""
    return await service.set_national(body, operator.sub)


@router.put(
    "/v1/spaces/{atlas_id}/crisis",
    response_model=AtlasSpacePublic,
    summary="Switch one space's crisis mode (ops, admin, or the space's manager)",
    responses={**AUTH_RESPONSES, **error_responses(SpaceNotFound)},
)
async def switch_space_crisis(
    atlas_id: AtlasIdPath, body: CrisisSwitch, principal: CurrentPrincipal, service: ServiceDep
) -> AtlasSpacePublic:
    """The space's own crisis switch; its snapshot goes out as a crisis event."""
    if not principal.has_role(Role.OPS, Role.ADMIN):
        if not principal.has_role(Role.MANAGER):
            raise Forbidden("requires role ops, admin, or manager of this ATLAS space")
        if principal.atlas_id != atlas_id:
            raise Forbidden(f"a manager may switch only their own space ({principal.atlas_id})")
    return await service.set_space(atlas_id, body, principal.sub)
