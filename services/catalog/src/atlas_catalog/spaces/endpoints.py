"""Space routes: list with filters, detail, and resolving a commune to its space."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from atlas_catalog.auth import CurrentPrincipal
from atlas_catalog.errors import InvalidCommuneCode, NoCoveringSpace, SpaceNotFound, UnknownValues
from atlas_catalog.spaces.models import AtlasSpacePublic, ResolvedSpace, SpacePage
from atlas_catalog.spaces.service import SpaceFilters, SpaceService
from atlas_events.auth import AUTH_RESPONSES
from atlas_events.errors import error_responses
from atlas_events.schemas._base import INT32_MAX
from atlas_events.service import SessionDep

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])


def _service(session: SessionDep) -> SpaceService:
    return SpaceService(session)


ServiceDep = Annotated[SpaceService, Depends(_service)]


@router.get(
    "",
    response_model=SpacePage,
    summary="The ATLAS spaces, filtered",
    responses={**AUTH_RESPONSES, **error_responses(UnknownValues)},
)
async def list_spaces(
    _: CurrentPrincipal,
    service: ServiceDep,
    departement: Annotated[str | None, Query(max_length=3)] = None,
    region: Annotated[str | None, Query(max_length=100)] = None,
    zone: Literal["metro", "drom", "com"] | None = None,
    status: Literal["open", "reduced", "closed", "crisis"] | None = None,
    crisis: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="In the name or commune")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> SpacePage:
    """Spaces by id; unknown département or région → 422 naming it."""
    return await service.list(
        SpaceFilters(
            departement=departement,
            region=region,
            zone=zone,
            status=status,
            crisis=crisis,
            q=q,
            limit=limit,
            offset=offset,
        )
    )


@router.get(
    "/resolve",
    response_model=ResolvedSpace,
    summary="The space covering a commune",
    responses={**AUTH_RESPONSES, **error_responses(NoCoveringSpace, InvalidCommuneCode)},
)
async def resolve_space(
    _: CurrentPrincipal,
    service: ServiceDep,
    commune_insee: Annotated[
        str,
        Query(
            pattern=r"^\s*(?:[0-9]{2}|2[ABab])[0-9]{3}\s*$",
            description="INSEE commune code, e.g. 83137 or 2A004 (case and spaces around ignored)",
        ),
    ],
) -> ResolvedSpace:
    """The commune's own space, else the space whose covers list it, else its département's
    default space; 404 when none covers it, 422 for a malformed code."""
    return await service.resolve(commune_insee)


@router.get(
    "/{atlas_id}",
    response_model=AtlasSpacePublic,
    summary="One ATLAS space",
    responses={**AUTH_RESPONSES, **error_responses(SpaceNotFound)},
)
async def get_space(
    atlas_id: Annotated[str, Path(min_length=1, max_length=64)],
    _: CurrentPrincipal,
    service: ServiceDep,
) -> AtlasSpacePublic:
    """The space, its coverage, opening hours and crisis mode."""
    return await service.get(atlas_id)
