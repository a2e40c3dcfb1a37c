"""Tables of the handler cases and their milestones."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, UniqueConstraint
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_mobility.db import MobilityModel

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

# Case statuses: open ones first. A case closed by mobility (need gone, dossier cancelled) is
# `annule`; one whose request the space closed is `termine` or `sans_suite`.
OPEN_CASE_STATUSES = ("ouvert", "en_cours")
CLOSED_CASE_STATUSES = ("termine", "sans_suite", "annule")


class HandlerCase(MobilityModel, table=True):
    """The work of one handler (logement, scolarité, déménagement) for one dossier."""

    __tablename__ = "mobility_cases"
    __table_args__ = (UniqueConstraint("mutation_id", "kind", name="uq_mobility_cases_kind"),)

    case_id: str = Field(primary_key=True, max_length=100)
    mutation_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=20)
    agent_id: str = Field(max_length=10)
    atlas_id: str = Field(index=True, max_length=64)
    status: str = Field(index=True, max_length=20)
    outcome: str | None = Field(default=None, max_length=20)
    request_id: str | None = Field(default=None, max_length=100)
    request_status: str | None = Field(default=None, max_length=32)
    prestation_code: str | None = Field(default=None, max_length=64)
    revision: int
    report_date: date
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    opened_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
    )


class Milestone(MobilityModel, table=True):
    """A step of a case with its due date and whether its reminders went out."""

    __tablename__ = "mobility_milestones"
    __table_args__ = (
        UniqueConstraint("case_id", "code", "child_ref", name="uq_mobility_milestones_step"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(_BIG_ID, primary_key=True, autoincrement=True)
    )
    # Looked up through uq_mobility_milestones_step, whose index leads with case_id. No foreign
    # key: milestones are written with their case, in its transaction (migration 0005 says why).
    case_id: str = Field(max_length=100)
    code: str = Field(max_length=40)
    # "" rather than NULL so the unique constraint holds for steps of the whole case.
    child_ref: str = Field(default="", max_length=64)
    label: str | None = Field(default=None, max_length=200)
    due_date: date = Field(index=True)
    urgent: bool = False
    due_sent_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
    )
    overdue_sent_at: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime,
    )
