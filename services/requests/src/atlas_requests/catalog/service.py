"""Applying catalog snapshots to the replica, and the crisis rules for taking a request."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_events.availability import Offer, offer
from atlas_events.schemas.catalog import PrestationSnapshot, PrestationWithdrawn, SpaceSnapshot
from atlas_requests.catalog.models import CatalogPrestation, CatalogSpace
from atlas_requests.errors import ChannelUnavailable, SpaceNotFound, UnknownPrestation
from atlas_requests.requests.state import CHANNEL_ALIASES, Channel
from atlas_requests.sla.calendar import departement_of


async def apply_prestation(session: AsyncSession, data: PrestationSnapshot) -> bool:
    """Store a snapshot unless the replica already holds this version or a later one."""
    row = await session.get(CatalogPrestation, data.code, with_for_update=True)
    if row is not None and row.version > data.version:
        return False
    if row is None:
        row = CatalogPrestation(
            code=data.code,
            version=data.version,
            updated_at=data.updated_at,
            title=data.title,
            category=data.category,
            essential=data.essential,
        )
        session.add(row)
    row.version = data.version
    row.title = data.title
    row.category = data.category
    row.channels = [(CHANNEL_ALIASES.get(c) or Channel(c)).value for c in data.channels]
    row.essential = data.essential
    row.crisis_only = data.crisis_only
    row.sla_days = data.sla_days or (
        None if data.sla_hours is None else max(1, -(-data.sla_hours // 24))
    )
    row.withdrawn = False
    row.updated_at = data.updated_at
    return True


async def apply_withdrawal(session: AsyncSession, data: PrestationWithdrawn) -> bool:
    """Mark a prestation withdrawn (kept, so old requests still name it)."""
    row = await session.get(CatalogPrestation, data.code, with_for_update=True)
    if row is None or row.version > data.version:
        return False
    row.withdrawn = True
    row.version = data.version
    row.updated_at = data.withdrawn_at
    return True


async def apply_space(session: AsyncSession, data: SpaceSnapshot) -> bool:
    """Store a space snapshot (crisis mode included) unless a later version is held."""
    row = await session.get(CatalogSpace, data.atlas_id, with_for_update=True)
    if row is not None and row.version > data.version:
        return False
    if row is None:
        row = CatalogSpace(
            atlas_id=data.atlas_id,
            version=data.version,
            name=data.name,
            commune_insee=data.commune_insee,
            departement="",
            updated_at=data.updated_at,
        )
        session.add(row)
    row.version = data.version
    row.name = data.name
    row.commune_insee = data.commune_insee
    row.departement = data.departement or departement_of(data.commune_insee)
    row.overseas = data.overseas
    row.crisis_mode = data.crisis_mode
    row.communes_covered = list(data.communes_covered)
    row.updated_at = data.updated_at
    return True


def offer_at(prestation: CatalogPrestation, space: CatalogSpace) -> Offer:
    """What the prestation offers now at the space (the shared crisis rule)."""
    return offer(
        prestation.channels,
        essential=prestation.essential,
        crisis_only=prestation.crisis_only,
        crisis=space.crisis_mode,
    )


class CatalogReplica:
    """Lookups over the replica, raising the service's errors."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def prestation(self, code: str) -> CatalogPrestation:
        row = await self.session.get(CatalogPrestation, code)
        if row is None or row.withdrawn:
            state = "withdrawn" if row is not None else "unknown"
            raise UnknownPrestation(
                f"prestation {code} is {state} in the catalog",
                detail={"message": f"prestation {code} is {state}", "prestation_code": code},
            )
        return row

    async def find_prestation(self, code: str) -> CatalogPrestation | None:
        row = await self.session.get(CatalogPrestation, code)
        return None if row is None or row.withdrawn else row

    async def space(self, atlas_id: str) -> CatalogSpace:
        row = await self.session.get(CatalogSpace, atlas_id)
        if row is None:
            raise SpaceNotFound(
                f"ATLAS space {atlas_id} is unknown",
                detail={"message": f"ATLAS space {atlas_id} is unknown", "atlas_id": atlas_id},
            )
        return row

    async def prestations(self, codes: Collection[str]) -> dict[str, CatalogPrestation]:
        """The replica rows of these codes (withdrawn ones included), in one query."""
        rows = await self.session.scalars(
            select(CatalogPrestation).where(col(CatalogPrestation.code).in_(list(codes)))
        )
        return {p.code: p for p in rows}

    async def spaces(self, atlas_ids: Collection[str]) -> dict[str, CatalogSpace]:
        """The replica rows of these spaces, in one query."""
        rows = await self.session.scalars(
            select(CatalogSpace).where(col(CatalogSpace.atlas_id).in_(list(atlas_ids)))
        )
        return {s.atlas_id: s for s in rows}

    async def find_space(self, atlas_id: str) -> CatalogSpace | None:
        return await self.session.get(CatalogSpace, atlas_id)

    async def space_for_commune(self, commune_insee: str) -> CatalogSpace:
        """The space in the commune, else the one whose covered communes list it; else 422."""
        spaces = (await self.session.execute(select(CatalogSpace))).scalars().all()
        for space in spaces:
            if space.commune_insee == commune_insee:
                return space
        for space in spaces:
            if commune_insee in space.communes_covered:
                return space
        raise SpaceNotFound(
            f"no ATLAS space covers commune {commune_insee}",
            detail={
                "message": "no ATLAS space covers that commune",
                "commune_insee": commune_insee,
            },
        )


def check_channel(prestation: CatalogPrestation, space: CatalogSpace, channel: Channel) -> None:
    """Refuse (409, naming the open channels) a request through a channel not open now."""
    if channel == Channel.ANTICIPATION:
        return  # mobility's work is opened by the platform itself, whatever the channels
    now = offer_at(prestation, space)
    if channel.value in now.channels:
        return
    if channel.value in now.suspended_channels and space.crisis_mode:
        why = (
            f"prestation {prestation.code} is suspended at {space.atlas_id} (crisis mode)"
            if not now.channels
            else f"prestation {prestation.code} is not offered through {channel.value}"
            f" at {space.atlas_id} during crisis mode"
        )
    elif now.state == "inactive":
        why = f"prestation {prestation.code} is offered only while crisis mode is on"
    else:
        why = f"prestation {prestation.code} is not offered through {channel.value}"
    raise ChannelUnavailable(
        why,
        channel=channel.value,
        open_channels=now.channels,
        prestation_code=prestation.code,
        atlas_id=space.atlas_id,
        crisis_mode=space.crisis_mode,
    )
