"""Tables of the missions: the mission itself, its cases, their milestones, its timeline."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, UniqueConstraint
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_mobility.db import MobilityModel

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

# Mission statuses: `ouvert` (departure case at the home space), `a_orienter` (no space covers
# the home commune), `en_retour` (return case open), `annule`, `inconnu` (a cancel or return
# seen before any announcement, kept so an older announcement stays ignored).
OPEN_MISSION_STATUSES = ("ouvert", "a_orienter")


class Mission(MobilityModel, table=True):
    """One mission of one agent, at its current revision."""

    __tablename__ = "mobility_missions"

    mission_id: str = Field(primary_key=True, max_length=64)
    revision: int
    agent_id: str = Field(index=True, max_length=10)
    status: str = Field(index=True, max_length=20)
    kind: str | None = Field(default=None, max_length=20)
    home_commune_insee: str | None = Field(default=None, max_length=5)
    atlas_id: str | None = Field(default=None, index=True, max_length=64)
    departure_date: date | None = Field(default=None, index=True)
    planned_return_date: date | None = Field(default=None, index=True)
    return_date: date | None = None
    return_flagged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    snapshot: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    cancel_reason: str | None = Field(default=None, max_length=2000)
    announced_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MissionCase(MobilityModel, table=True):
    """The departure or the return case of a mission and the requests it opened."""

    __tablename__ = "mobility_mission_cases"

    case_id: str = Field(primary_key=True, max_length=100)
    mission_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=20)  # depart_mission, retour_mission
    agent_id: str = Field(max_length=10)
    atlas_id: str | None = Field(default=None, index=True, max_length=64)
    status: str = Field(max_length=20)  # ouvert, a_orienter, termine, annule
    # Prestation codes a request is open for at the space (one request per code).
    prestation_codes: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    reference_date: date  # departure date, or the (planned) return date
    opened_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MissionMilestone(MobilityModel, table=True):
    """A step of a mission case with its due date."""

    __tablename__ = "mobility_mission_milestones"
    __table_args__ = (UniqueConstraint("case_id", "code", name="uq_mobility_mission_step"),)

    id: int | None = Field(
        default=None, sa_column=Column(_BIG_ID, primary_key=True, autoincrement=True)
    )
    case_id: str = Field(max_length=100, foreign_key="mobility_mission_cases.case_id")
    code: str = Field(max_length=40)
    label: str = Field(max_length=200)
    due_date: date = Field(index=True)


class MissionTimelineEntry(MobilityModel, table=True):
    """One event applied to (or ignored by) a mission, in the order it was handled."""

    __tablename__ = "mobility_mission_timeline"

    id: int | None = Field(
        default=None, sa_column=Column(_BIG_ID, primary_key=True, autoincrement=True)
    )
    mission_id: str = Field(index=True, max_length=64)
    revision: int | None = None
    event_id: str | None = Field(default=None, max_length=200)
    event_type: str = Field(max_length=200)
    outcome: str = Field(max_length=20)  # applied, duplicate, stale, ignored, flagged
    summary: str = Field(max_length=2000)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
