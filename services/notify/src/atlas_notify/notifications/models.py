"""Notifications (one per source, recipient and template) and their deliveries (per channel)."""

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field as SQLField

from atlas_events.schemas.notify import NotificationChannel, Recipient
from atlas_notify.db import NotifyModel, timestamp


class Notification(NotifyModel, table=True):
    """A message for a recipient from a template; the unique key makes every source send once."""

    __tablename__ = "notify_notifications"
    __table_args__ = (
        UniqueConstraint(
            "source_key",
            "recipient_kind",
            "recipient_id",
            "template_code",
            name="uq_notify_notifications_once",
        ),
        Index("ix_notify_notifications_recipient", "recipient_kind", "recipient_id", "created_at"),
    )

    id: str = SQLField(primary_key=True, max_length=36)
    source_key: str = SQLField(max_length=300, description="event:<id>, command:<id>, api:<key>")
    source_type: str = SQLField(max_length=200)
    recipient_kind: str = SQLField(max_length=16)
    recipient_id: str = SQLField(max_length=64)
    template_code: str = SQLField(max_length=64)
    template_version: int
    category: str = SQLField(max_length=40)
    params: dict[str, str] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    channels: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    reference: str | None = SQLField(default=None, max_length=100)
    requested_by: str = SQLField(max_length=200)
    request_hash: str | None = SQLField(default=None, max_length=64)
    send_at: datetime | None = timestamp(nullable=True)
    created_at: datetime = timestamp()
    cancelled_at: datetime | None = timestamp(nullable=True)
    purged_at: datetime | None = timestamp(nullable=True)


class Delivery(NotifyModel, table=True):
    """One channel to one address; a replay starts a new generation, the old row stays as it was."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        UniqueConstraint(
            "notification_id", "channel", "target", "generation", name="uq_notify_deliveries_once"
        ),
        Index("ix_notify_deliveries_due", "status", "digest", "not_before"),
        Index("ix_notify_deliveries_inbox", "channel", "target_kind", "target", "created_at"),
    )

    id: str = SQLField(primary_key=True, max_length=36)
    notification_id: str = SQLField(
        foreign_key="notify_notifications.id", index=True, max_length=36
    )
    channel: str = SQLField(max_length=16)
    target_kind: str = SQLField(max_length=16, description="agent, staff or space (inbox)")
    target: str = SQLField(max_length=200)
    address: str | None = SQLField(default=None, max_length=254)
    generation: int = 1
    status: str = SQLField(max_length=32)
    reason: str = SQLField(max_length=64)
    detail: str | None = SQLField(default=None, max_length=2000)
    critical: bool = False
    digest: bool = False
    attempts: int = 0
    not_before: datetime | None = timestamp(nullable=True)
    next_attempt_at: datetime | None = timestamp(nullable=True, index=True)
    subject: str | None = SQLField(default=None, max_length=300)
    body: str | None = SQLField(default=None, sa_type=Text)
    provider: str | None = SQLField(default=None, max_length=64)
    provider_ref: str | None = SQLField(default=None, max_length=200)
    dead_lettered: bool = SQLField(default=False, index=True)
    replaced_by: str | None = SQLField(default=None, max_length=36)
    read_at: datetime | None = timestamp(nullable=True)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    completed_at: datetime | None = timestamp(nullable=True)
    purged_at: datetime | None = timestamp(nullable=True)


class NotificationCreate(BaseModel):
    """A direct send: a template, its parameters and a recipient (the key goes in a header)."""

    recipient: Recipient
    template: str = Field(pattern=r"^[a-z0-9_.]{1,64}$")
    params: dict[str, str] = Field(default_factory=dict)
    channels: list[NotificationChannel] | None = Field(
        default=None, min_length=1, description="Default: every channel the template has."
    )
    reference: str | None = Field(default=None, max_length=100)
    send_at: AwareDatetime | None = Field(default=None, description="Not before; absent: now.")


class DeliveryPublic(BaseModel):
    id: str
    channel: str
    target_kind: str
    target: str
    address: str | None
    generation: int
    status: str
    reason: str
    detail: str | None
    attempts: int
    not_before: datetime | None
    next_attempt_at: datetime | None
    provider: str | None
    dead_lettered: bool
    read_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class NotificationPublic(BaseModel):
    id: str
    status: str = Field(description="Summary over the current deliveries (see `deliveries`).")
    recipient: Recipient
    template: str
    template_version: int
    category: str
    reference: str | None
    requested_by: str
    send_at: datetime | None
    created_at: datetime
    cancelled_at: datetime | None
    deliveries: list[DeliveryPublic]

    @staticmethod
    def summary(statuses: list[str]) -> str:
        """One word for the whole notification: in flight first, then the best outcome."""
        for status in ("sending", "created", "delivered"):
            if status in statuses:
                return status
        for status in ("temporary_failure", "technical_failure", "permanent_failure"):
            if status in statuses:
                return status
        return "skipped"


def json_params(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}
