"""Fixtures of the shared library's tests."""

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from atlas_events.db import Database

sys.path.insert(0, str(Path(__file__).parent))  # the counter_domain test module

import counter_domain


@pytest.fixture(params=["postgresql", "sqlite"])
async def counter_db(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: Callable[[], str]
) -> AsyncIterator[Database]:
    """The counter domain on a fresh database: real PostgreSQL, and SQLite for local mode."""
    url = (
        database_url() if request.param == "postgresql" else f"sqlite+aiosqlite:///{tmp_path}/c.db"
    )
    db = Database(url)
    await counter_domain.create_schema(db)
    yield db
    await db.dispose()


@pytest.fixture
async def pg_counter_db(database_url: Callable[[], str]) -> AsyncIterator[Database]:
    """The counter domain on PostgreSQL only (for SKIP LOCKED and crash tests)."""
    db = Database(database_url())
    await counter_domain.create_schema(db)
    yield db
    await db.dispose()


AsyncFactory = Callable[..., Awaitable[str]]
