"""ATLAS spaces, the communes they cover, départements and communes, and their API shapes."""

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON
from sqlmodel import Field

from atlas_catalog.db import CatalogModel
from atlas_events.db import UTCDateTime

SpaceStatus = Literal["open", "reduced", "closed", "crisis"]
Zone = Literal["metro", "drom", "com"]


class AtlasSpaceBase(CatalogModel):
    """What describes an ATLAS space, as the reference data gives it."""

    name: str = Field(max_length=200)
    commune_insee: str = Field(max_length=5, unique=True)
    commune_name: str = Field(max_length=200)
    departement: str = Field(max_length=3, index=True)
    region: str = Field(max_length=100)
    zone: str = Field(max_length=10)
    contact: dict[str, Any] = Field(sa_type=JSON)
    opening_hours: dict[str, Any] = Field(sa_type=JSON)


class AtlasSpace(AtlasSpaceBase, table=True):
    """An ATLAS space and its crisis switch; `base_status` is the status outside crisis mode."""

    __tablename__ = "catalog_spaces"

    atlas_id: str = Field(primary_key=True, max_length=64)
    base_status: str = Field(max_length=20)
    crisis_active: bool = Field(default=False)
    crisis_reason: str | None = Field(default=None, max_length=2000)
    crisis_changed_by: str | None = Field(default=None, max_length=200)
    crisis_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = Field(ge=1)
    refdata_digest: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class SpaceCommune(CatalogModel, table=True):
    """A commune a space covers explicitly (besides its own); a commune is in one list at most."""

    __tablename__ = "catalog_space_communes"

    commune_insee: str = Field(primary_key=True, max_length=5)
    atlas_id: str = Field(foreign_key="catalog_spaces.atlas_id", index=True, max_length=64)


class Departement(CatalogModel, table=True):
    """A département with a space, and the space its other communes resolve to."""

    __tablename__ = "catalog_departements"

    code: str = Field(primary_key=True, max_length=3)
    name: str = Field(max_length=100)
    region: str = Field(max_length=100)
    zone: str = Field(max_length=10)
    default_atlas_id: str | None = Field(default=None, max_length=64)


class Commune(CatalogModel, table=True):
    """An official current commune of a département that has a space."""

    __tablename__ = "catalog_communes"

    code: str = Field(primary_key=True, max_length=5)
    name: str = Field(max_length=200)
    departement: str = Field(max_length=3, index=True)


class CrisisState(CatalogModel):
    """Crisis mode as it applies to a space: whether on, and why."""

    active: bool
    scope: Literal["space", "national"] | None = None
    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None


class AtlasSpacePublic(AtlasSpaceBase):
    """An ATLAS space as the API shows it."""

    atlas_id: str
    status: SpaceStatus = Field(description="crisis while crisis mode is on, else the usual one.")
    base_status: str = Field(description="The status outside crisis mode.")
    covers: list[str] = Field(description="Communes it covers besides its own.")
    default_for_departements: list[str] = Field(
        description="Départements whose other communes resolve to it."
    )
    crisis: CrisisState
    version: int
    updated_at: datetime


class SpacePage(CatalogModel):
    """A page of spaces."""

    total: int
    limit: int
    offset: int
    items: list[AtlasSpacePublic]


class ResolvedSpace(CatalogModel):
    """The space covering a commune, and how it was found."""

    commune_insee: str
    commune_name: str | None
    matched_by: Literal["own_commune", "covers", "departement_default"]
    space: AtlasSpacePublic
