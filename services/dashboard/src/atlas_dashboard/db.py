"""The dashboard's (empty) metadata: the service kit wants a database, for readiness only."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from atlas_events.outbox import EventTables


class DashboardModel(SQLModel, registry=registry()):
    """Base of the dashboard tables (none: its figures live in memory, rebuilt from the topics)."""


metadata = DashboardModel.metadata
event_tables = EventTables(metadata)
