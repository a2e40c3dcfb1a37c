"""Alembic helpers shared by every service's `migrations/` folder."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Column, Integer, LargeBinary, MetaData, inspect, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_engine_from_config

from atlas_events.outbox import EventTables, notify_trigger_sql

log = structlog.get_logger(__name__)

MIGRATION_LOCK_ID = 0x41544C4153  # "ATLAS"


def alembic_config(migrations_dir: Path, url: str) -> Config:
    """An Alembic config pointing at a service's migrations and database."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, url: str, revision: str = "head") -> None:
    """Bring the database to `revision` (blocking: run it in a thread from async code)."""
    command.upgrade(alembic_config(migrations_dir, url), revision)


def run_env(target_metadata: MetaData, default_url: str) -> None:
    """The body of every service's `migrations/env.py`, online (async engine) or offline."""
    from alembic import context

    config = context.config
    url = config.get_main_option("sqlalchemy.url") or default_url
    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        "render_as_batch": url.startswith("sqlite"),
        "compare_type": True,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    def _run(connection: Connection) -> None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # API and worker pods start together: one migrates, the others wait, find it done.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
            context.run_migrations()

    async def _online() -> None:
        engine = async_engine_from_config(
            {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
        )
        async with engine.connect() as connection:
            await connection.run_sync(_run)
        await engine.dispose()

    asyncio.run(_online())


def create_event_tables() -> None:
    """Create the outbox and processed-event tables (and the NOTIFY trigger on PostgreSQL)."""
    from alembic import op

    bind = op.get_bind()
    metadata = MetaData()
    EventTables(metadata)
    metadata.create_all(bind)
    if bind.dialect.name == "postgresql":
        for statement in notify_trigger_sql():
            op.execute(statement)
    _compress_packed_rows()


def add_packed_outbox() -> None:
    """Give an outbox created before packed rows its `batch` and `batch_count` columns.

    Idempotent: an outbox created by `create_event_tables` since has them already. Each
    service's migration after its first calls this once (`remove_packed_outbox` undoes it).
    """
    from alembic import op

    bind = op.get_bind()
    present = {column["name"] for column in inspect(bind).get_columns("atlas_outbox")}
    with op.batch_alter_table("atlas_outbox") as batch_op:
        if "batch" not in present:
            batch_op.add_column(Column("batch", LargeBinary, nullable=True))
        if "batch_count" not in present:
            batch_op.add_column(Column("batch_count", Integer, nullable=True))
    _compress_packed_rows()


def remove_packed_outbox() -> None:
    """Undo `add_packed_outbox`."""
    from alembic import op

    with op.batch_alter_table("atlas_outbox") as batch_op:
        batch_op.drop_column("batch_count")
        batch_op.drop_column("batch")


def _compress_packed_rows() -> None:
    """A packed row holds megabytes of JSON: lz4 compresses it several times faster than
    PostgreSQL's default (pglz), for less space and WAL. A server built without lz4 keeps pglz."""
    from alembic import op

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.execute(text("ALTER TABLE atlas_outbox ALTER COLUMN batch SET COMPRESSION lz4"))
    except DBAPIError:
        log.warning("outbox_lz4_unavailable")


def drop_event_tables() -> None:
    """Undo `create_event_tables`."""
    from alembic import op

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS atlas_outbox_notify ON atlas_outbox")
        op.execute("DROP FUNCTION IF EXISTS atlas_outbox_notify()")
    metadata = MetaData()
    EventTables(metadata)
    metadata.drop_all(bind)
