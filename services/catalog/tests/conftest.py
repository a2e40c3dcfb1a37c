"""Fixtures of the catalog tests: a PostgreSQL database with the reference data loaded."""

import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the catalog_factories helper module

from catalog_factories import CatalogClient, settings, started


@pytest.fixture(scope="module")
def catalog_database(postgres_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh PostgreSQL database shared by one test module (loading the data takes seconds)."""
    name = f"atlas_test_catalog_{os.getpid()}_{secrets.token_hex(4)}"
    postgres_server.create_database(name)
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def catalog_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("catalog-keys") / "jwt.pem"


@pytest.fixture(scope="module")
async def catalog(catalog_database: str, catalog_key: Path) -> AsyncIterator[CatalogClient]:
    """The catalog on PostgreSQL with the reference data, without workers (no broker needed)."""
    async with started(settings(catalog_database, catalog_key)) as client:
        yield client
