"""The mobility service's own tables: its SQLModel base, metadata and the shared event tables."""

from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from atlas_events.outbox import EventTables


class MobilityModel(SQLModel, registry=registry()):
    """Base of the mobility tables, kept apart from other services' metadata."""


metadata = MobilityModel.metadata
event_tables = EventTables(metadata)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for bulk statements that skip the ORM's per-object cost."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def load_models() -> None:
    """Import every table module so the metadata is complete (migrations, tests)."""
    from atlas_mobility.cases import models as _cases  # noqa: F401
    from atlas_mobility.dossiers import models as _dossiers  # noqa: F401
    from atlas_mobility.missions import models as _missions  # noqa: F401
    from atlas_mobility.spaces import models as _spaces  # noqa: F401
