"""Consumers keeping the catalog replica: prestations and spaces, read from the earliest offset."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.consumer import Delivery
from atlas_events.schemas.catalog import PrestationSnapshot, PrestationWithdrawn, SpaceSnapshot
from atlas_requests.catalog import service


async def on_prestation_snapshot(session: AsyncSession, delivery: Delivery) -> None:
    assert isinstance(delivery.data, PrestationSnapshot)
    await service.apply_prestation(session, delivery.data)


async def on_prestation_withdrawn(session: AsyncSession, delivery: Delivery) -> None:
    assert isinstance(delivery.data, PrestationWithdrawn)
    await service.apply_withdrawal(session, delivery.data)


async def on_space_snapshot(session: AsyncSession, delivery: Delivery) -> None:
    """Both space event types carry a full snapshot (crisis mode included)."""
    assert isinstance(delivery.data, SpaceSnapshot)
    await service.apply_space(session, delivery.data)
