"""Tables of the spaces replica: spaces, the communes they cover, département defaults."""

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_mobility.db import MobilityModel


class SpaceReplica(MobilityModel, table=True):
    """The latest snapshot of an ATLAS space (from the catalog topic, or the seed files)."""

    __tablename__ = "mobility_spaces"

    atlas_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    commune_insee: str = Field(max_length=5)
    departement: str | None = Field(default=None, max_length=3)
    zone: str | None = Field(default=None, max_length=10)
    overseas: bool = False
    status: str | None = Field(default=None, max_length=20)
    communes_covered: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    default_for_departements: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    version: int  # 0 for the seed, so any catalog snapshot replaces it
    source: str = Field(max_length=20)  # catalog or seed
    updated_at: datetime = Field(sa_type=UTCDateTime)


class SpaceCommune(MobilityModel, table=True):
    """A commune and the space that receives its mutations (own commune or covered)."""

    __tablename__ = "mobility_space_communes"

    commune_insee: str = Field(primary_key=True, max_length=5)
    atlas_id: str = Field(index=True, max_length=64)


class DepartementDefault(MobilityModel, table=True):
    """The space serving a département's communes that no space lists."""

    __tablename__ = "mobility_departement_defaults"

    departement: str = Field(primary_key=True, max_length=3)
    atlas_id: str = Field(index=True, max_length=64)
