"""The pytest plugin's fixtures, exercised for real, and its cross-session server sharing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from atlas_devstack.pytest_plugin import SharedServer


async def _tables(url: str) -> list[str]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return [row["tablename"] for row in rows]
    finally:
        await conn.close()


async def test_database_url_gives_fresh_empty_databases(
    database_url: Callable[[], str], request: pytest.FixtureRequest
) -> None:
    assert request.node.get_closest_marker("postgres") is not None
    first, second = database_url(), database_url()
    assert first != second
    assert first.startswith("postgresql+asyncpg://")
    assert await _tables(first) == []
    assert await _tables(second) == []

    conn = await asyncpg.connect(first.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("CREATE TABLE dossier (id int)")
    finally:
        await conn.close()
    assert await _tables(first) == ["dossier"]
    assert await _tables(second) == []  # isolated from the other database


async def test_unique_topic_creates_topic_and_dlq(
    kafka_bootstrap: str,
    unique_topic: Callable[..., Awaitable[str]],
    request: pytest.FixtureRequest,
) -> None:
    assert request.node.get_closest_marker("kafka") is not None
    name = await unique_topic(partitions=4)
    other = await unique_topic(partitions=1)
    assert name != other
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([name, f"{name}.dlq"])}
    finally:
        await admin.close()
    assert len(described[name]["partitions"]) == 4
    assert described[f"{name}.dlq"]["error_code"] == 0


def test_tests_without_the_fixtures_are_not_marked(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("kafka") is None
    assert request.node.get_closest_marker("postgres") is None


def test_plugin_import_starts_and_loads_nothing_heavy() -> None:
    code = (
        "import sys, atlas_devstack.pytest_plugin\n"
        "heavy = {'aiokafka', 'psycopg', 'asyncpg', 'docker', 'testcontainers'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_shared_server_first_in_sets_up_last_out_tears_down(tmp_path: Path) -> None:
    # flock locks belong to open files, so two instances in one process behave like two sessions.
    events: list[str] = []
    a, b = SharedServer(tmp_path / "s.lock"), SharedServer(tmp_path / "s.lock")
    a.enter(lambda: events.append("a sets up"), lambda: events.append("a joins"))
    b.enter(lambda: events.append("b sets up"), lambda: events.append("b joins"))
    a.leave(lambda: events.append("a tears down"))
    b.leave(lambda: events.append("b tears down"))
    assert events == ["a sets up", "b joins", "b tears down"]

    c = SharedServer(tmp_path / "s.lock")
    c.enter(lambda: events.append("c sets up"), lambda: events.append("c joins"))
    c.leave(lambda: events.append("c tears down"))
    assert events[-2:] == ["c sets up", "c tears down"]


def test_shared_server_failed_setup_leaves_it_free(tmp_path: Path) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        SharedServer(tmp_path / "s.lock").enter(broken, lambda: None)
    events: list[str] = []
    retry = SharedServer(tmp_path / "s.lock")
    retry.enter(lambda: events.append("set up"), lambda: events.append("joined"))
    retry.leave(lambda: None)
    assert events == ["set up"]
