"""The catalog service's own tables: its SQLModel base, metadata and the shared event tables."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from atlas_events.outbox import EventTables


class CatalogModel(SQLModel, registry=registry()):
    """Base of the catalog tables, kept apart from other services' metadata."""


metadata = CatalogModel.metadata
event_tables = EventTables(metadata)
