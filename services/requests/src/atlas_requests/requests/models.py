"""Tables of the requests domain: the request, its transitions, assignments, messages, roster."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Text, text
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_requests.db import RequestsModel


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_type=UTCDateTime,
        nullable=nullable,
        index=index,
    )


class Request(RequestsModel, table=True):
    """A support request in a space's queue."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_queue", "atlas_id", "status", "submitted_at"),
        Index("ix_requests_space_due", "atlas_id", "sla_due_at"),
        Index("ix_requests_space_submitted", "atlas_id", "submitted_at"),
        Index("ix_requests_case_space", "case_id", "atlas_id", unique=True),
        # Only assigned requests: most are not (every request mobility opens), and lookups are by
        # a staff member (migration 0003).
        Index(
            "ix_requests_assignee",
            "assignee",
            postgresql_where=text("assignee IS NOT NULL"),
            sqlite_where=text("assignee IS NOT NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    atlas_id: str = Field(max_length=64)
    prestation_code: str = Field(max_length=64, index=True)
    requested_prestation_code: str | None = Field(default=None, max_length=64)
    prestation_unverified: bool = False
    agent_id: str = Field(max_length=10, index=True)
    filed_by: str = Field(max_length=200, index=True)
    filed_by_role: str = Field(max_length=20)
    on_behalf: bool = False
    proxy_name: str | None = Field(default=None, max_length=200)
    proxy_relationship: str | None = Field(default=None, max_length=40)
    power_of_attorney_ref: str | None = Field(default=None, max_length=100)
    channel: str = Field(max_length=20)
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_type=Text)
    status: str = Field(max_length=32)
    assignee: str | None = Field(default=None, max_length=200)
    case_id: str | None = Field(default=None, max_length=100)
    case_kind: str | None = Field(default=None, max_length=20)
    mutation_id: str | None = Field(default=None, max_length=64)
    transferred_from: str | None = Field(default=None, max_length=36)
    transferred_to: str | None = Field(default=None, max_length=36)
    sla_target_days: float
    sla_consumed_days: float = 0.0
    sla_running_since: datetime | None = _ts(nullable=True)
    sla_due_at: datetime | None = _ts(nullable=True)
    sla_warn_at: datetime | None = _ts(nullable=True, index=True)
    sla_warned_at: datetime | None = _ts(nullable=True)
    sla_breached_at: datetime | None = _ts(nullable=True)
    first_response_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    submitted_at: datetime | None = _ts(nullable=True)
    closed_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _ts()


class RequestTransition(RequestsModel, table=True):
    """One move of a request: from where to where, who, when and why."""

    __tablename__ = "request_transitions"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=36, index=True)
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str = Field(max_length=32)
    actor: str = Field(max_length=200)
    actor_role: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=2000)
    at: datetime = _ts()


class RequestAssignment(RequestsModel, table=True):
    """One (re)assignment of a request: to whom, by whom (none when automatic), when."""

    __tablename__ = "request_assignments"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=36, index=True)
    assignee: str = Field(max_length=200)
    previous_assignee: str | None = Field(default=None, max_length=200)
    assigned_by: str | None = Field(default=None, max_length=200)
    mode: str = Field(max_length=10, description="manual or auto")
    at: datetime = _ts()


class StaffMember(RequestsModel, table=True):
    """A staff member on a space's roster, who automatic assignment may choose."""

    __tablename__ = "request_staff"

    atlas_id: str = Field(primary_key=True, max_length=64)
    staff_id: str = Field(primary_key=True, max_length=200)
    added_by: str = Field(max_length=200)
    added_at: datetime = _ts()


class RequestMessage(RequestsModel, table=True):
    """A message in a request's thread; attachments are vault document ids."""

    __tablename__ = "request_messages"

    id: str = Field(primary_key=True, max_length=36)
    request_id: str = Field(max_length=36, index=True)
    author: str = Field(max_length=200)
    author_role: str = Field(max_length=10)
    body: str = Field(sa_type=Text)
    attachments: list[str] = Field(default_factory=list, sa_type=JSON)
    posted_at: datetime = _ts()
