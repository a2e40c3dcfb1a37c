"""Timestamps come back timezone-aware UTC from PostgreSQL and from SQLite (local mode); bulk
inserts (COPY on PostgreSQL) write what insert() would, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    select,
    text,
)
from sqlalchemy.exc import ArgumentError, IntegrityError

from atlas_events.db import Database, UTCDateTime, bulk_insert, plan_for_each_batch

metadata = MetaData()
stamps = Table(
    "stamps", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
)


async def test_timestamps_are_aware_utc_on_every_backend(schema_db: Database) -> None:
    db = schema_db
    paris = timezone(timedelta(hours=2))
    written = [datetime(2027, 8, 30, 9, 0, tzinfo=paris), datetime(2027, 8, 30, 9, 0)]
    async with db.transaction() as session:
        for i, value in enumerate(written):
            await session.execute(insert(stamps).values(id=i, at=value))
    async with db.transaction() as session:
        read = list((await session.execute(select(stamps.c.at).order_by(stamps.c.id))).scalars())
    assert [r.tzinfo for r in read] == [UTC, UTC]
    assert read[0] == written[0]  # the same instant, in UTC
    assert read[1] == written[1].replace(tzinfo=UTC)  # naive is taken as UTC
    assert read[0] > datetime(2000, 1, 1, tzinfo=UTC)  # comparable with aware values (SQLite bug)


rows_table = Table(
    "bulk_rows",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("doc", JSON, nullable=True),
    Column("blob", LargeBinary, nullable=True),
    Column("at", UTCDateTime, nullable=True),
    Column("kind", String(10), nullable=False, default="plain"),
    Column("token", String(40), nullable=False, default=lambda: "made-by-default"),
)


@pytest.fixture
async def schema_db(backend_url: str) -> AsyncIterator[Database]:
    """This module's tables on a fresh database of each backend."""
    db = Database(backend_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()


async def _all_rows(db: Database) -> list[dict[str, Any]]:
    async with db.transaction() as session:
        result = await session.execute(select(rows_table).order_by(rows_table.c.id))
        return [dict(r._mapping) for r in result]


async def test_bulk_insert_writes_every_column_type_in_order(schema_db: Database) -> None:
    paris = timezone(timedelta(hours=2))
    rows = [
        {
            "name": f"n{i}",
            "doc": {"é": [i, None, 1.5], "nested": {"ok": True}},
            "blob": bytes([i, 0, 255]),
            "at": datetime(2027, 8, 30, 9, i, tzinfo=paris) if i % 2 else datetime(2027, 1, 1),
        }
        for i in range(50)
    ]
    async with schema_db.transaction() as session:
        await bulk_insert(session, rows_table, rows)
    read = await _all_rows(schema_db)
    assert [r["name"] for r in read] == [f"n{i}" for i in range(50)]  # ids follow the order
    assert [r["id"] for r in read] == sorted(r["id"] for r in read)
    assert read[3]["doc"] == {"é": [3, None, 1.5], "nested": {"ok": True}}
    assert read[3]["blob"] == bytes([3, 0, 255])
    assert read[3]["at"] == datetime(2027, 8, 30, 9, 3, tzinfo=paris)
    assert read[4]["at"] == datetime(2027, 1, 1, tzinfo=UTC)  # naive taken as UTC, as insert()
    assert {r["kind"] for r in read} == {"plain"}  # Python-side defaults fill what is left out
    assert {r["token"] for r in read} == {"made-by-default"}


async def test_bulk_insert_is_part_of_the_callers_transaction(schema_db: Database) -> None:
    async def insert_then_fail() -> None:
        async with schema_db.transaction() as session:
            await bulk_insert(session, rows_table, [{"name": "kept?"}])
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError, match="undo"):
        await insert_then_fail()
    assert await _all_rows(schema_db) == []
    # First statement of its transaction, after an ORM-free session: still inside it.
    async with schema_db.transaction() as session:
        await bulk_insert(session, rows_table, [{"name": "a"}])
        await session.rollback()
    assert await _all_rows(schema_db) == []


async def test_bulk_insert_constraint_violation_is_an_integrity_error_and_writes_nothing(
    schema_db: Database,
) -> None:
    async with schema_db.transaction() as session:
        await bulk_insert(session, rows_table, [{"name": "taken"}])

    async def insert_taken() -> None:
        async with schema_db.transaction() as session:
            await bulk_insert(session, rows_table, [{"name": "fresh"}, {"name": "taken"}])

    with pytest.raises(IntegrityError):
        await insert_taken()
    assert [r["name"] for r in await _all_rows(schema_db)] == ["taken"]


async def test_bulk_insert_refuses_unknown_or_uneven_columns(schema_db: Database) -> None:
    async with schema_db.transaction() as session:
        with pytest.raises(ArgumentError, match="no column colour"):
            await bulk_insert(session, rows_table, [{"name": "x", "colour": "red"}])
    if not schema_db.is_sqlite:  # SQLite goes through insert(), which has its own rules
        async with schema_db.transaction() as session:
            with pytest.raises(ArgumentError, match="same columns"):
                await bulk_insert(session, rows_table, [{"name": "x"}, {"name": "y", "doc": {}}])
    assert await _all_rows(schema_db) == []


async def test_a_batch_transaction_is_planned_for_its_values_and_only_it(
    schema_db: Database,
) -> None:
    async with schema_db.transaction() as session:
        await plan_for_each_batch(session)
        if not schema_db.is_sqlite:
            assert await session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
        await bulk_insert(session, rows_table, [{"name": "batch"}])
    if not schema_db.is_sqlite:
        async with schema_db.transaction() as session:  # the next transaction: back to the default
            assert await session.scalar(text("SHOW plan_cache_mode")) == "auto"
    assert [r["name"] for r in await _all_rows(schema_db)] == ["batch"]
