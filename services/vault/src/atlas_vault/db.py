"""The vault service's own tables: its SQLModel base, metadata and the shared event tables."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from atlas_events.outbox import EventTables


class VaultModel(SQLModel, registry=registry()):
    """Base of the vault tables, kept apart from other services' metadata."""


metadata = VaultModel.metadata
event_tables = EventTables(metadata)
