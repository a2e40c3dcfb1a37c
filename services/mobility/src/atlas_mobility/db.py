"""The mobility service's own tables: its SQLModel base, metadata and the shared event tables."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from atlas_events.outbox import EventTables


class MobilityModel(SQLModel, registry=registry()):
    """Base of the mobility tables, kept apart from other services' metadata."""


metadata = MobilityModel.metadata
event_tables = EventTables(metadata)
