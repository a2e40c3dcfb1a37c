"""Timestamps come back timezone-aware UTC from PostgreSQL and from SQLite (local mode)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from atlas_events.db import Database, UTCDateTime

metadata = MetaData()
stamps = Table(
    "stamps", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_timestamps_are_aware_utc_on_every_backend(
    backend: str, tmp_path: Path, database_url: Callable[[], str]
) -> None:
    url = database_url() if backend == "postgresql" else f"sqlite+aiosqlite:///{tmp_path}/t.db"
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    paris = timezone(timedelta(hours=2))
    written = [datetime(2027, 8, 30, 9, 0, tzinfo=paris), datetime(2027, 8, 30, 9, 0)]
    async with db.transaction() as session:
        for i, value in enumerate(written):
            await session.execute(insert(stamps).values(id=i, at=value))
    async with db.transaction() as session:
        read = list((await session.execute(select(stamps.c.at).order_by(stamps.c.id))).scalars())
    await db.dispose()
    assert [r.tzinfo for r in read] == [UTC, UTC]
    assert read[0] == written[0]  # the same instant, in UTC
    assert read[1] == written[1].replace(tzinfo=UTC)  # naive is taken as UTC
    assert read[0] > datetime(2000, 1, 1, tzinfo=UTC)  # comparable with aware values (SQLite bug)
