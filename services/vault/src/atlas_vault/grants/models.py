"""Grant and request-status tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_vault.db import VaultModel


class GrantBase(VaultModel):
    grantee: str = Field(max_length=200, description="The staff member's sub.")
    atlas_id: str | None = Field(
        default=None, max_length=64, description="The staff member's space, when it must match."
    )
    request_id: str = Field(max_length=100, index=True, description="The request it serves.")


class Grant(GrantBase, table=True):
    """Read access to one document for one staff member, for one request, until `expires_at`."""

    __tablename__ = "vault_grants"

    id: str = Field(primary_key=True, max_length=100)
    document_id: str = Field(max_length=100, index=True, foreign_key="vault_documents.id")
    owner_agent_id: str = Field(max_length=20, index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    revoked_by: str | None = Field(default=None, max_length=200)
    revoke_reason: str | None = Field(default=None, max_length=40)


class GrantPublic(GrantBase):
    id: str
    document_id: str
    owner_agent_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    live: bool


class RequestState(VaultModel, table=True):
    """The last known status of a request, from the requests service's events."""

    __tablename__ = "vault_request_states"

    request_id: str = Field(primary_key=True, max_length=100)
    status: str = Field(max_length=32)
    closed: bool = False
    changed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
