"""Journal tables: the entries and the head that serialises appends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, String
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_vault.db import VaultModel


class JournalEntryBase(VaultModel):
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    actor: str = Field(max_length=200)
    actor_role: str = Field(max_length=20)
    action: str = Field(max_length=40, index=True)
    document_id: str | None = Field(default=None, max_length=100, index=True)
    owner_agent_id: str | None = Field(default=None, max_length=20, index=True)
    request_id: str | None = Field(default=None, max_length=100)
    grant_id: str | None = Field(default=None, max_length=100)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))


class JournalEntry(JournalEntryBase, table=True):
    """One journaled act; `hash` covers its fields and the previous entry's hash."""

    __tablename__ = "vault_journal"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


class JournalEntryPublic(JournalEntryBase):
    seq: int


class JournalHead(VaultModel, table=True):
    """The last entry's position and hash: one row, locked by every append."""

    __tablename__ = "vault_journal_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))
