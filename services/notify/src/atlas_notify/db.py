"""The notify service's own tables: its SQLModel base, metadata and the shared event tables."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from atlas_events.db import UTCDateTime
from atlas_events.outbox import EventTables


class NotifyModel(SQLModel, registry=registry()):
    """Base of the notify tables, kept apart from other services' metadata."""


metadata = NotifyModel.metadata
event_tables = EventTables(metadata)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def timestamp(*, nullable: bool = False, index: bool = False) -> Any:
    """A timezone-aware timestamp column for an SQLModel field."""
    return Field(
        default=None,
        sa_column=Column(UTCDateTime, nullable=nullable, index=index),
    )
