"""Async database engines and the unit of work: one transaction, committed once or rolled back."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, DateTime, Table, any_, event, insert, literal, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.schema import ColumnDefault
from sqlalchemy.types import TypeDecorator

from atlas_events import jsoncodec


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on PostgreSQL and SQLite alike.

    SQLite keeps no offset and hands back naive datetimes, which then fail to compare with aware
    ones; naive values are taken as UTC both ways.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine with the settings each backend needs to behave under concurrent writers."""
    kwargs.setdefault("json_serializer", jsoncodec.dumps_str)
    kwargs.setdefault("json_deserializer", jsoncodec.loads)
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        return create_async_engine(url, **kwargs)

    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # Take transactions into our own hands (see _on_begin) and make concurrent processes wait
        # for each other instead of failing with "database is locked".
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: two processes (an API and its worker, or two
        # relays) then serialise instead of deadlocking when a reader later upgrades to a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """One engine and its session factory; `transaction()` is the unit of work."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session committed when the block ends normally and rolled back otherwise."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


async def bulk_insert(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert `rows` (dicts with the same keys) in the session's transaction, as fast as it goes.

    On PostgreSQL this is one binary COPY on the session's own connection: a multi-row INSERT
    through the ORM session costs more in SQLAlchemy's per-row parameter handling, and in the
    server's per-row executor start, than the rows themselves. Values go through each column
    type's bind processing (JSON columns, `UTCDateTime`) as with `insert()`; Python-side column
    defaults fill the columns the rows leave out, server defaults the rest. A failure raises
    SQLAlchemy's exception (IntegrityError for a constraint) with the driver's error as its
    cause. Elsewhere (SQLite) it is `session.execute(insert(table), rows)`.
    """
    if not rows:
        return
    names = list(rows[0])
    unknown = [n for n in names if n not in table.c]
    if unknown:
        raise sa_exc.ArgumentError(f"{table.name} has no column {', '.join(unknown)}")
    bind = session.get_bind()
    if bind.dialect.name != "postgresql" or bind.dialect.driver != "asyncpg":
        await session.execute(insert(table), list(rows))
        return
    await session.flush()  # ORM objects added before must exist first (foreign keys), as insert()
    # Python-side defaults of the columns left out: a value, or a callable called per row.
    filled: dict[str, Any] = {
        column.name: column.default.arg
        for column in table.c
        if column.name not in rows[0]
        and isinstance(column.default, ColumnDefault)
        and (column.default.is_scalar or column.default.is_callable)
    }
    columns = names + list(filled)
    dialect = bind.dialect
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in columns]
    processed = [(i, p) for i, p in enumerate(processors) if p is not None]
    width = len(names)
    records = []
    for row in rows:
        if len(row) != width:
            raise sa_exc.ArgumentError(f"rows for {table.name} do not all have the same columns")
        values = [row[name] for name in names]
        for value in filled.values():
            values.append(value(None) if callable(value) else value)
        for i, process in processed:
            if values[i] is not None:
                values[i] = process(values[i])
        records.append(tuple(values))
    connection = await session.connection()  # the session's, in its transaction
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # The adapter begins the server-side transaction lazily, on the first statement.
        await connection.exec_driver_sql("SELECT 1")
    try:
        await driver.copy_records_to_table(
            table.name, records=records, columns=columns, schema_name=table.schema
        )
    except Exception as exc:
        _raise_as_sqlalchemy(exc, f"COPY {table.name}")


def _raise_as_sqlalchemy(exc: Exception, statement: str) -> None:
    """Raise the driver's error as SQLAlchemy would have wrapped it (the original as cause)."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        raise sa_exc.IntegrityError(statement, None, exc) from exc
    if isinstance(exc, asyncpg.DataError):
        raise sa_exc.DataError(statement, None, exc) from exc
    if isinstance(exc, asyncpg.PostgresError):
        raise sa_exc.DBAPIError(statement, None, exc) from exc
    raise exc  # connection errors and the like stay the driver's (see is_connection_error)


def among(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values` for a batch's thousands of values: on PostgreSQL one array parameter
    (`= ANY`), which SQLAlchemy neither expands nor renders value by value (an `IN` of a
    thousand ids cost more to compile than to run); elsewhere `IN`."""
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(list(values))
    return column == any_(literal(list(values), ARRAY(column.type)))


async def plan_for_each_batch(session: AsyncSession) -> None:
    """Have PostgreSQL plan this transaction's statements for the values they are given.

    asyncpg prepares every statement, and after five runs PostgreSQL may keep a generic plan
    made with the statistics of the moment. A consumer batch's `key IN (...)` lookup on a table
    that grew since (a burst's tables grow from empty) then scanned the whole index and filtered
    each entry against the list: 37 ms a batch instead of a few. A plan made for the values at
    hand costs a fraction of a millisecond, once per batch statement; API requests keep the
    generic plans of their short statements. Nothing to do on SQLite.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def try_advisory_xact_lock(session: AsyncSession, name: str) -> bool:
    """Take PostgreSQL's advisory lock named `name` until the transaction ends; False if another
    session holds it. One number per name, the same in every process (per database)."""
    key = zlib.crc32(name.encode())
    return bool(await session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))


def rowcount(result: object) -> int:
    """Rows an UPDATE, DELETE or INSERT touched (the typed Result hides the cursor's rowcount)."""
    return int(getattr(result, "rowcount", 0) or 0)
