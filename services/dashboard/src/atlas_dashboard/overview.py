"""The figures the dashboard shows, as the JSON API returns them and the page renders them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

CaseState = Literal["ouvert", "en_cours", "clos", "annule", "transfere"]


class MonthCount(BaseModel):
    """Arrivals expected in one month (report dates in it)."""

    month: str = Field(description="YYYY-MM.")
    arrivals: int


class SpaceArrivals(BaseModel):
    """Arrivals at one space over the horizon, and the state of their handler cases."""

    atlas_id: str | None = Field(description="None for dossiers still to be oriented.")
    name: str
    months: list[MonthCount]
    total: int
    cases: dict[str, dict[str, int]] = Field(
        description="Per case kind (logement, scolarite, demenagement): count per case state."
    )


class MissionMonth(BaseModel):
    """Departures on and returns from mission in one month."""

    month: str = Field(description="YYYY-MM.")
    departures: int
    returns: int


class SpaceMissions(BaseModel):
    """Departures and returns at one space (the families' home space) over the next months."""

    atlas_id: str | None = Field(description="None for missions still to be oriented.")
    name: str
    months: list[MissionMonth]
    departures: int
    returns: int


class SpaceRequests(BaseModel):
    """The request queue of one space: backlog and SLA compliance."""

    atlas_id: str
    name: str
    backlog: int = Field(description="Open requests (submitted, not closed).")
    in_progress: int = Field(description="Open requests being handled (en_instruction…).")
    overdue: int = Field(description="Open requests past their SLA deadline.")
    sla_met: int = Field(description="Requests closed before their deadline.")
    sla_missed: int = Field(description="Requests closed late, breached, or open past due.")
    sla_compliance: float | None = Field(description="sla_met / (sla_met + sla_missed).")


class ChannelHealth(BaseModel):
    """Notification deliveries on one channel in the recent window."""

    channel: str
    statuses: dict[str, int] = Field(description="Status changes in the window, per status.")
    sent: int = Field(description="Deliveries handed to the channel (sending).")
    delivered: int
    failed: int = Field(description="Temporary, permanent and technical failures.")
    failure_rate: float | None = Field(description="failed / (delivered + failed).")


class NotificationHealth(BaseModel):
    """Notification delivery health over the recent window."""

    window_minutes: int
    channels: list[ChannelHealth]


class SpaceCrisis(BaseModel):
    """A space in crisis mode."""

    atlas_id: str
    name: str
    scope: str | None = Field(description="space (its own switch) or national.")
    reason: str | None
    changed_by: str | None
    since: datetime | None


class CrisisStatus(BaseModel):
    """Crisis mode: the national switch (as the spaces' snapshots carry it) and each space's."""

    national: bool
    national_reason: str | None
    spaces: list[SpaceCrisis]
    spaces_known: int = Field(description="Spaces the dashboard has a snapshot of.")


class GroupLag(BaseModel):
    """How far a consumer group is behind on one topic."""

    group: str
    topic: str
    partitions: int
    committed: int
    end: int
    lag: int


class DlqSize(BaseModel):
    """Messages held in one dead-letter topic."""

    topic: str
    messages: int


class DlqByConsumer(BaseModel):
    """Dead-lettered messages per consumer (its name is in the DLQ headers)."""

    topic: str
    consumer: str
    messages: int
    last_reason: str | None


class KafkaHealth(BaseModel):
    """Consumer lag and DLQ sizes read from Kafka's admin API."""

    checked_at: datetime | None = Field(description="When Kafka was last read; None: not yet.")
    error: str | None = Field(default=None, description="Why the last read failed, if it did.")
    lag: list[GroupLag] = Field(default_factory=list)
    dlq: list[DlqSize] = Field(default_factory=list)


class Overview(BaseModel):
    """Everything on the dashboard."""

    generated_at: datetime
    caught_up: bool = Field(description="Whether the projection has read the topics to the end.")
    events_applied: int
    events_skipped: int = Field(description="Records that were not valid events, ignored.")
    horizon: tuple[date, date] = Field(description="Report dates counted: [first, last).")
    scope: str | None = Field(description="The one space shown, or None for every space.")
    arrivals: list[SpaceArrivals]
    missions: list[SpaceMissions] = Field(
        default_factory=list,
        description="Departures on and returns from mission per space, next three months.",
    )
    requests: list[SpaceRequests]
    notifications: NotificationHealth
    crisis: CrisisStatus
    kafka: KafkaHealth
    dlq_by_consumer: list[DlqByConsumer]
