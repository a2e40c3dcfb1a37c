"""The notify service's own tables: its SQLModel base, metadata and the shared event tables."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from atlas_events.outbox import EventTables


class NotifyModel(SQLModel, registry=registry()):
    """Base of the notify tables, kept apart from other services' metadata."""


metadata = NotifyModel.metadata
event_tables = EventTables(metadata)
