"""Fixtures of the shared library's tests."""

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from atlas_events.db import Database

sys.path.insert(0, str(Path(__file__).parent))  # the counter_domain test module

import counter_domain


@pytest.fixture(params=["postgresql", "sqlite"])
def backend_url(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: Callable[[], str]
) -> str:
    """A fresh database on each backend: real PostgreSQL, and SQLite for local mode."""
    if request.param == "postgresql":
        return database_url()
    return f"sqlite+aiosqlite:///{tmp_path}/test.db"


@pytest.fixture
async def counter_db(backend_url: str) -> AsyncIterator[Database]:
    """The counter domain on a fresh database of each backend."""
    db = Database(backend_url)
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
