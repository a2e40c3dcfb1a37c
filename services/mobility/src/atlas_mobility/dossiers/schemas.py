"""What the dossier endpoints answer (CONTRACTS.md §2 and the arrivals view)."""

from datetime import date, datetime

from pydantic import BaseModel, Field


class MilestonePublic(BaseModel):
    """A step of a case."""

    code: str
    label: str | None = None
    due_date: date
    status: str = Field(description="a_venir, urgent, echu, en_retard, termine or annule.")
    urgent: bool = Field(description="The due date had already passed when it was planned.")
    child_ref: str | None = Field(default=None, description="The child it is for (scolarité).")


class CasePublic(BaseModel):
    """A handler case of the dossier."""

    case_id: str
    kind: str = Field(description="logement, scolarite or demenagement.")
    status: str = Field(description="ouvert, en_cours, termine, sans_suite or annule.")
    atlas_id: str
    request_id: str | None = None
    request_status: str | None = None
    outcome: str | None = None
    details: dict[str, object] = Field(default_factory=dict)
    milestones: list[MilestonePublic]


class DossierPublic(BaseModel):
    """A mobility dossier: one per mutation."""

    mutation_id: str
    revision: int
    agent_id: str
    status: str = Field(description="ouvert, a_orienter, clos or annule.")
    destination_atlas_id: str | None
    destination_commune_insee: str | None
    destination_zone: str | None
    origin_commune_insee: str | None
    origin_atlas_id: str | None
    report_date: date | None
    announced_at: datetime
    anticipation_days: int | None = Field(
        default=None, description="Days between the announcement and the report date."
    )
    cancelled_at: datetime | None
    cancel_reason: str | None
    closed_at: datetime | None
    cases: list[CasePublic]


class TimelineEntryPublic(BaseModel):
    """One event applied to, or ignored by, the dossier."""

    seq: int
    revision: int | None
    event_type: str
    event_id: str | None
    outcome: str = Field(description="applied, duplicate or stale.")
    summary: str
    changes: list[str]
    occurred_at: datetime | None
    recorded_at: datetime


class TimelinePublic(BaseModel):
    mutation_id: str
    entries: list[TimelineEntryPublic]


class ArrivalsPublic(BaseModel):
    """Upcoming arrivals at a space, with their cases."""

    atlas_id: str
    start: date
    end: date
    dossiers: list[DossierPublic]


class Accepted(BaseModel):
    """An HR event accepted for processing."""

    status: str = Field(
        description=(
            "accepted, or duplicate when that event id was taken in the last days (outbox keep);"
            " either way the dossier applies a revision once."
        )
    )
    id: str
    type: str
    mutation_id: str
    revision: int
