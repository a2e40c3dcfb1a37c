"""What the missions read API returns."""

from datetime import date, datetime

from pydantic import BaseModel


class MissionMilestonePublic(BaseModel):
    code: str
    label: str
    due_date: date


class MissionCasePublic(BaseModel):
    case_id: str
    kind: str
    status: str
    atlas_id: str | None
    prestation_codes: list[str]
    request_keys: list[str]
    reference_date: date
    milestones: list[MissionMilestonePublic]


class MissionTimelineEntryPublic(BaseModel):
    seq: int
    revision: int | None
    event_type: str
    event_id: str | None
    outcome: str
    summary: str
    recorded_at: datetime


class MissionPublic(BaseModel):
    mission_id: str
    revision: int
    agent_id: str
    status: str
    kind: str | None
    atlas_id: str | None
    home_commune_insee: str | None
    departure_date: date | None
    planned_return_date: date | None
    return_date: date | None
    return_flagged_at: datetime | None
    cancel_reason: str | None
    cases: list[MissionCasePublic]
    timeline: list[MissionTimelineEntryPublic]


class MissionSummary(BaseModel):
    mission_id: str
    revision: int
    agent_id: str
    status: str
    kind: str | None
    atlas_id: str | None
    departure_date: date | None
    planned_return_date: date | None
    return_date: date | None
