"""API shapes of crisis mode."""

from __future__ import annotations

from pydantic import BaseModel, Field

from atlas_catalog.spaces.models import CrisisState


class CrisisSwitch(BaseModel):
    """Turn crisis mode on or off, saying why."""

    active: bool
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class CrisisOverview(BaseModel):
    """The national switch and the spaces in crisis mode of their own."""

    national: CrisisState
    spaces_in_crisis: list[str] = Field(description="Spaces whose own switch is on.")
