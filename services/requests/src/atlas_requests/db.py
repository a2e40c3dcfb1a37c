"""The requests service's own tables: its SQLModel base, metadata and the shared event tables."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from atlas_events.outbox import EventTables


class RequestsModel(SQLModel, registry=registry()):
    """Base of the requests tables, kept apart from other services' metadata."""


metadata = RequestsModel.metadata
event_tables = EventTables(metadata)


def load_models() -> None:
    """Import every table module, so the metadata is complete (migrations, tests)."""
    from atlas_requests.board import models as _board  # noqa: F401
    from atlas_requests.catalog import models as _catalog  # noqa: F401
    from atlas_requests.requests import models as _requests  # noqa: F401
