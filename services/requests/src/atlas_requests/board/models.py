"""Tables of the board: posts (offers and needs) and the matches suggested between them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_requests.db import RequestsModel


class BoardPost(RequestsModel, table=True):
    """An offer or a need: a subject, a level, a commune; the contact stays private."""

    __tablename__ = "board_posts"
    __table_args__ = (Index("ix_board_posts_match", "kind", "subject", "departement", "status"),)

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=5, description="offer or need")
    author: str = Field(max_length=200, index=True)
    subject: str = Field(max_length=60)
    level: str | None = Field(default=None, max_length=40)
    commune_insee: str = Field(max_length=5)
    departement: str = Field(max_length=3)
    description: str | None = Field(default=None, sa_type=Text)
    contact: str = Field(max_length=200)
    status: str = Field(default="open", max_length=10)
    created_at: datetime = Field(sa_type=UTCDateTime)


class BoardMatch(RequestsModel, table=True):
    """A suggested pairing of an offer and a need; contacts are shared once both consent."""

    __tablename__ = "board_matches"
    __table_args__ = (Index("ix_board_matches_pair", "offer_id", "need_id", unique=True),)

    id: str = Field(primary_key=True, max_length=36)
    offer_id: str = Field(max_length=36, index=True)
    need_id: str = Field(max_length=36, index=True)
    proximity: str = Field(max_length=12, description="commune or departement")
    offer_consent: bool | None = None
    need_consent: bool | None = None
    status: str = Field(default="suggested", max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)
    shared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
