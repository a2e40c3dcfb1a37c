"""Replica tables of the catalog's compacted snapshots, kept by version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_requests.db import RequestsModel


class CatalogPrestation(RequestsModel, table=True):
    """The latest snapshot of a prestation seen on `catalog.prestations.v1`."""

    __tablename__ = "replica_prestations"

    code: str = Field(primary_key=True, max_length=64)
    version: int
    title: str = Field(max_length=200)
    category: str = Field(max_length=40)
    channels: list[str] = Field(default_factory=list, sa_type=JSON)
    essential: bool
    crisis_only: bool = False
    sla_days: int | None = None
    withdrawn: bool = False
    updated_at: datetime = Field(sa_type=UTCDateTime)


class CatalogSpace(RequestsModel, table=True):
    """The latest snapshot of an ATLAS space seen on `catalog.spaces.v1`."""

    __tablename__ = "replica_spaces"

    atlas_id: str = Field(primary_key=True, max_length=64)
    version: int
    name: str = Field(max_length=200)
    commune_insee: str = Field(max_length=5)
    departement: str = Field(max_length=3)
    overseas: bool = False
    crisis_mode: bool = False
    communes_covered: list[str] = Field(default_factory=list, sa_type=JSON)
    updated_at: datetime = Field(sa_type=UTCDateTime)
