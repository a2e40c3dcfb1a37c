"""API shapes of the board."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from atlas_events.schemas._base import InseeCode

Subject = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=60)
]
Level = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=40)
]


class PostCreate(BaseModel):
    """An offer of help or a need: e.g. subject `mathematiques`, level `college`."""

    kind: Literal["offer", "need"]
    subject: Subject = Field(description="What: mathematiques, francais, courses, compagnie…")
    level: Level | None = Field(default=None, description="e.g. primaire, college, lycee.")
    commune_insee: InseeCode
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    contact: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=200)
    ] = Field(
        description="How to reach the author; shown to the other side only once both consent."
    )


class PostPublic(BaseModel):
    post_id: str
    kind: str
    subject: str
    level: str | None
    commune_insee: str
    departement: str
    description: str | None
    status: str
    created_at: datetime
    mine: bool
    contact: str | None = Field(description="Only on your own posts.")


class ConsentIn(BaseModel):
    consent: bool


class MatchPublic(BaseModel):
    """A suggested match as one side sees it."""

    match_id: str
    proximity: str
    status: str = Field(description="suggested, contact_shared or declined")
    my_post_id: str
    other_post: PostPublic
    my_consent: bool | None
    other_consent: bool | None
    other_contact: str | None = Field(description="Shown only once both sides consented.")
    created_at: datetime
