"""API shapes of the space views."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SpaceKpis(BaseModel):
    """Figures of one space over a window of submissions."""

    atlas_id: str
    since: datetime
    submitted: int = Field(description="Requests submitted in the window.")
    backlog: dict[str, int] = Field(description="Open requests now, by status.")
    backlog_total: int
    unassigned: int = Field(description="Open requests nobody is assigned to.")
    first_response_hours_avg: float | None
    first_response_hours_median: float | None
    sla_closed: int = Field(description="Requests of the window closed since, SLA-counted.")
    sla_met: int
    sla_compliance: float | None = Field(description="Share of closed requests within SLA.")
    sla_breached_open: int = Field(description="Open requests past their deadline.")
    channel_mix: dict[str, int] = Field(description="Requests of the window, by channel.")
