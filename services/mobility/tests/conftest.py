"""Fixtures of the mobility tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the mobility_factories helper module

import os
import secrets
from collections.abc import AsyncIterator

import pytest
from mobility_factories import RunningService, start_service


@pytest.fixture(scope="module")
async def mobility(
    postgres_server: object,
    _atlas_test_databases: list[str],
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningService]:
    """One running mobility service (API + faust workers) per test module, on fresh topics."""
    name = f"atlas_test_{os.getpid()}_mob_{secrets.token_hex(4)}"
    postgres_server.create_database(name)  # type: ignore[attr-defined]
    _atlas_test_databases.append(name)
    url = postgres_server.url(name)  # type: ignore[attr-defined]
    key_path = tmp_path_factory.mktemp("mobility-keys") / "jwt.pem"
    async for service in start_service(
        database_url=url, bootstrap=kafka_bootstrap, key_path=key_path
    ):
        yield service
