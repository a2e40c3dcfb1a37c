"""The local PostgreSQL server: init, start, databases, stop."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from atlas_devstack.postgres import PostgresEndpoint, PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A directory the `postgres` OS user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="atlas-pg-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_server_lifecycle(server_dir: Path, free_port: Callable[[], int]) -> None:
    server = PostgresServer(server_dir / "pg", port=free_port())
    started = time.monotonic()
    server.ensure_installed()
    assert server.init() is True
    server.start()
    try:
        server.wait_ready()
        print(f"postgres init + start + ready: {time.monotonic() - started:.1f} s")
        assert server.init() is False  # an existing cluster is kept
        assert server.is_running()

        server.create_database("atlas_lifecycle")
        url = server.url("atlas_lifecycle")
        assert url == f"postgresql+asyncpg://atlas@127.0.0.1:{server.port}/atlas_lifecycle"
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            assert await conn.fetchval("SELECT current_database()") == "atlas_lifecycle"
            assert await conn.fetchval("SELECT current_user") == "atlas"
        finally:
            await conn.close()

        server.drop_database("atlas_lifecycle")
        assert "atlas_lifecycle" not in server.endpoint.list_databases("atlas_")
        # Trust is granted on 127.0.0.1 only; the server listens nowhere else.
        assert "listen_addresses = '127.0.0.1'" in (server.data_dir / "postgresql.conf").read_text()
    finally:
        server.stop()
    assert not server.is_running()
    assert not server.endpoint.ping(timeout=1)


def test_endpoint_from_url_and_back() -> None:
    endpoint = PostgresEndpoint.from_url("postgresql://ci:s%40cret@db.local:6543/postgres")
    assert (endpoint.host, endpoint.port, endpoint.user, endpoint.password) == (
        "db.local",
        6543,
        "ci",
        "s@cret",
    )
    assert endpoint.url("x") == "postgresql+asyncpg://ci:s%40cret@db.local:6543/x"
    assert endpoint.url("x", driver=None) == "postgresql://ci:s%40cret@db.local:6543/x"


def test_database_names_are_checked() -> None:
    endpoint = PostgresEndpoint("127.0.0.1", 1, "atlas")
    with pytest.raises(ValueError, match="must match"):
        endpoint.create_database('x"; DROP DATABASE postgres; --')
