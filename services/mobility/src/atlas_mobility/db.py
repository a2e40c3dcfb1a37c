"""The mobility service's own tables: its SQLModel base, metadata and the shared event tables."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from atlas_events.outbox import EventTables


class MobilityModel(SQLModel, registry=registry()):
    """Base of the mobility tables, kept apart from other services' metadata."""


metadata = MobilityModel.metadata
event_tables = EventTables(metadata)


def load_models() -> None:
    """Import every table module so the metadata is complete (migrations, tests)."""
    from atlas_mobility.cases import models as _cases  # noqa: F401
    from atlas_mobility.dossiers import models as _dossiers  # noqa: F401
    from atlas_mobility.spaces import models as _spaces  # noqa: F401
