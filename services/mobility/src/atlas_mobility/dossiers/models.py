"""Tables of the dossiers: the dossier itself (one per mutation) and its timeline."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_mobility.db import MobilityModel

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class DossierBase(MobilityModel):
    """What a dossier says about its mutation at its current revision."""

    mutation_id: str = Field(primary_key=True, max_length=64)
    revision: int
    agent_id: str = Field(index=True, max_length=10)
    hr_source: str | None = Field(default=None, max_length=300)
    destination_commune_insee: str | None = Field(default=None, max_length=5)
    destination_atlas_id: str | None = Field(default=None, index=True, max_length=64)
    destination_zone: str | None = Field(default=None, max_length=10)
    origin_commune_insee: str | None = Field(default=None, max_length=5)
    origin_atlas_id: str | None = Field(default=None, max_length=64)
    report_date: date | None = Field(default=None, index=True)


class Dossier(DossierBase, table=True):
    """A mobility dossier; its status is derived from its cases (see dossiers/status.py)."""

    __tablename__ = "mobility_dossiers"

    # The full mutation snapshot of the current revision (None for a cancellation seen first).
    snapshot: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Case kinds the decision asked the handlers for at this revision.
    case_kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    announced_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
    )
    cancel_reason: str | None = Field(default=None, max_length=2000)
    closed_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
    )


class TimelineEntry(MobilityModel, table=True):
    """One event applied to (or ignored by) a dossier, in the order it was handled."""

    __tablename__ = "mobility_timeline"

    id: int | None = Field(
        default=None, sa_column=Column(_BIG_ID, primary_key=True, autoincrement=True)
    )
    mutation_id: str = Field(index=True, max_length=64)
    revision: int | None = None
    event_id: str | None = Field(default=None, max_length=200)
    event_type: str = Field(max_length=200)
    outcome: str = Field(max_length=20)  # applied, duplicate, stale
    summary: str = Field(max_length=2000)
    changes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    occurred_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
    )
    recorded_at: datetime = Field(sa_type=UTCDateTime)
