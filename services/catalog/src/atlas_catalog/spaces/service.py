"""Reading spaces and resolving a commune to the space that covers it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_catalog.errors import InvalidCommuneCode, NoCoveringSpace, SpaceNotFound, UnknownValues
from atlas_catalog.events import aware
from atlas_catalog.search.text import fold
from atlas_catalog.spaces.models import (
    AtlasSpace,
    AtlasSpacePublic,
    CrisisState,
    ResolvedSpace,
    SpacePage,
)
from atlas_catalog.spaces.repository import SpaceRepository
from atlas_catalog.state import CatalogState, get_state

# Two digits (2A/2B for Corsica) then three; overseas codes (97xxx, 98xxx) have the same shape.
INSEE_CODE = re.compile(r"^(?:[0-9]{2}|2[AB])[0-9]{3}$")


@dataclass(frozen=True)
class SpaceFilters:
    """Filters of the spaces list; each given value must exist."""

    departement: str | None = None
    region: str | None = None
    zone: str | None = None
    status: str | None = None
    crisis: bool | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0


def render_space(
    space: AtlasSpace,
    *,
    covers: Sequence[str],
    default_for: Sequence[str],
    state: CatalogState,
) -> AtlasSpacePublic:
    """A space as the API shows it; crisis mode shows in its status."""
    if space.crisis_active:
        crisis = CrisisState(
            active=True,
            scope="space",
            reason=space.crisis_reason,
            changed_by=space.crisis_changed_by,
            changed_at=aware(space.crisis_changed_at) if space.crisis_changed_at else None,
        )
    elif state.national_crisis:
        changed_at = state.national_crisis_changed_at
        crisis = CrisisState(
            active=True,
            scope="national",
            reason=state.national_crisis_reason,
            changed_by=state.national_crisis_changed_by,
            changed_at=aware(changed_at) if changed_at else None,
        )
    else:
        crisis = CrisisState(active=False)
    status: Literal["open", "reduced", "closed", "crisis"] = (
        "crisis" if crisis.active else space.base_status  # type: ignore[assignment]
    )
    return AtlasSpacePublic(
        atlas_id=space.atlas_id,
        name=space.name,
        commune_insee=space.commune_insee,
        commune_name=space.commune_name,
        departement=space.departement,
        region=space.region,
        zone=space.zone,
        contact=space.contact,
        opening_hours=space.opening_hours,
        status=status,
        base_status=space.base_status,
        covers=list(covers),
        default_for_departements=list(default_for),
        crisis=crisis,
        version=space.version,
        updated_at=aware(space.updated_at),
    )


class SpaceService:
    """Space reads in the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = SpaceRepository(session)

    async def get(self, atlas_id: str) -> AtlasSpacePublic:
        space = await self.repository.get(atlas_id)
        if space is None:
            raise SpaceNotFound(f"no ATLAS space has id {atlas_id!r}")
        return await self.render(space)

    async def render(self, space: AtlasSpace) -> AtlasSpacePublic:
        covers = await self.repository.covers([space.atlas_id])
        defaults = await self.repository.defaults()
        state = await get_state(self.session)
        return render_space(
            space,
            covers=covers.get(space.atlas_id, []),
            default_for=defaults.get(space.atlas_id, []),
            state=state,
        )

    async def list(self, filters: SpaceFilters) -> SpacePage:
        """Spaces matching every filter, by id; unknown filter values → 422 naming them."""
        departements = await self.repository.departements()
        problems = []
        if filters.departement is not None and filters.departement not in {
            d.code for d in departements
        }:
            problems.append(
                {
                    "field": "departement",
                    "value": filters.departement,
                    "allowed": sorted(d.code for d in departements),
                }
            )
        regions = {d.region for d in departements}
        if filters.region is not None and filters.region not in regions:
            problems.append(
                {"field": "region", "value": filters.region, "allowed": sorted(regions)}
            )
        if problems:
            raise UnknownValues(problems)
        state = await get_state(self.session)
        covers = await self.repository.covers()
        defaults = await self.repository.defaults()
        needle = fold(filters.q).strip() if filters.q else None
        rendered = []
        for space in await self.repository.all():
            if filters.departement is not None and space.departement != filters.departement:
                continue
            if filters.region is not None and space.region != filters.region:
                continue
            if filters.zone is not None and space.zone != filters.zone:
                continue
            if needle and needle not in fold(f"{space.name} {space.commune_name}"):
                continue
            public = render_space(
                space,
                covers=covers.get(space.atlas_id, []),
                default_for=defaults.get(space.atlas_id, []),
                state=state,
            )
            if filters.status is not None and public.status != filters.status:
                continue
            if filters.crisis is not None and public.crisis.active != filters.crisis:
                continue
            rendered.append(public)
        page = rendered[filters.offset : filters.offset + filters.limit]
        return SpacePage(
            total=len(rendered), limit=filters.limit, offset=filters.offset, items=page
        )

    async def resolve(self, commune_insee: str) -> ResolvedSpace:
        """The space covering a commune: its own, else the one listing it, else the default of
        its département; 404 when none does, 422 for a malformed code."""
        code = commune_insee.strip().upper()
        if not INSEE_CODE.fullmatch(code):
            raise InvalidCommuneCode(
                f"{commune_insee!r} is not an INSEE commune code"
                " (5 characters, e.g. 83137 or 2A004)"
            )
        commune = await self.repository.commune(code)
        matched_by: Literal["own_commune", "covers", "departement_default"]
        space = await self.repository.by_commune(code)
        if space is not None:
            matched_by = "own_commune"
        else:
            atlas_id = await self.repository.covering(code)
            if atlas_id is not None:
                matched_by = "covers"
            else:
                if commune is None:
                    raise NoCoveringSpace(
                        f"commune {code} is not a current commune of a département with a space"
                    )
                departement = await self.repository.departement(commune.departement)
                atlas_id = departement.default_atlas_id if departement else None
                if atlas_id is None:
                    raise NoCoveringSpace(f"no ATLAS space covers commune {code}")
                matched_by = "departement_default"
            space = await self.repository.get(atlas_id)
            if space is None:  # the data guarantees it; say so if it ever breaks
                raise NoCoveringSpace(f"commune {code} points to a missing space {atlas_id}")
        return ResolvedSpace(
            commune_insee=code,
            commune_name=commune.name if commune else None,
            matched_by=matched_by,
            space=await self.render(space),
        )
