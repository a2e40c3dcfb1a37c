"""Catalog-wide state: the change revision (for search caches) and the national crisis switch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field

from atlas_catalog.db import CatalogModel
from atlas_events.db import UTCDateTime

STATE_ID = 1


class CatalogState(CatalogModel, table=True):
    """One row: bumped on every change search depends on; holds the national crisis switch."""

    __tablename__ = "catalog_state"

    id: int = Field(primary_key=True)
    revision: int = Field(default=0)
    national_crisis: bool = Field(default=False)
    national_crisis_reason: str | None = Field(default=None, max_length=2000)
    national_crisis_changed_by: str | None = Field(default=None, max_length=200)
    national_crisis_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RefdataFile(CatalogModel, table=True):
    """The digest of a reference data file last loaded, so an unchanged file is skipped."""

    __tablename__ = "catalog_refdata_files"

    name: str = Field(primary_key=True, max_length=100)
    digest: str = Field(max_length=64)
    loaded_at: datetime = Field(sa_type=UTCDateTime)


async def get_state(session: AsyncSession, *, for_update: bool = False) -> CatalogState:
    """The state row (created by the migration)."""
    query = select(CatalogState).where(CatalogState.id == STATE_ID)  # type: ignore[arg-type]
    if for_update:
        query = query.with_for_update()
    result = await session.execute(query.execution_options(populate_existing=True))
    state = result.scalar_one()
    return state


async def bump_revision(session: AsyncSession) -> int:
    """Mark a change search must see; returns the new revision (committed with the change)."""
    table = CatalogState.__table__  # type: ignore[attr-defined]
    result = await session.execute(
        update(table)
        .where(table.c.id == STATE_ID)
        .values(revision=table.c.revision + 1)
        .returning(table.c.revision)
    )
    return int(result.scalar_one())


async def current_revision(session: AsyncSession) -> int:
    table = CatalogState.__table__  # type: ignore[attr-defined]
    return int((await session.execute(select(table.c.revision))).scalar_one())
