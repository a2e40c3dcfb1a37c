"""The requests service's own tables: its SQLModel base, metadata and the shared event tables."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from atlas_events.outbox import EventTables


class RequestsModel(SQLModel, registry=registry()):
    """Base of the requests tables, kept apart from other services' metadata."""


metadata = RequestsModel.metadata
event_tables = EventTables(metadata)
