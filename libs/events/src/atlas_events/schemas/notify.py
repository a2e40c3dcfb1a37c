"""Data of the notification command and of the notify service's delivery events."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from atlas_events.schemas._base import EntityId, EventData, LongText, ShortText, example

SEND_NOTIFICATION: Final = "fr.defense.atlas.notify.send_notification.v1"
DELIVERY_STATUS_CHANGED: Final = "fr.defense.atlas.notify.delivery.status_changed.v1"

NotificationChannel = Literal["in_app", "email", "sms"]
NotificationId = Annotated[
    EntityId,
    Field(description="Identifier of the notification, chosen by the sender (idempotency key)."),
]
TemplateCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9_.]{1,64}$"),
    Field(description="Code of the notification template, e.g. mobility.dossier_opened."),
]


DeliveryStatus = Literal[
    "created",
    "sending",
    "delivered",
    "temporary_failure",
    "permanent_failure",
    "technical_failure",
    "skipped",
]
ReasonCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9_]{1,64}$"),
    Field(description="A machine-readable code, lower case with underscores."),
]


def _in_app_only() -> list[NotificationChannel]:
    return ["in_app"]


_NOTIFICATION_ID = "dossier-opened:TERRE-2027-004211:1:agent"


class Recipient(EventData):
    """Who is notified: an agent, or the staff of a space."""

    kind: Literal["agent", "space_staff", "staff"] = Field(
        description="An agent, a space's staff, or one staff member."
    )
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The agent_id for an agent, the atlas_id for a space's staff, the staff sub."
    )


class SendNotification(EventData):
    """Command: notify a recipient from a template; params fill the template's placeholders."""

    model_config = example(
        {
            "notification_id": _NOTIFICATION_ID,
            "recipient": {"kind": "agent", "id": "2019123456"},
            "template": "mobility.dossier_opened",
            "params": {"destination": "Toulon", "report_date": "30/08/2027"},
            "channels": ["in_app", "email"],
            "reference": "TERRE-2027-004211",
            "requested_by": "mobility",
            "requested_at": "2027-05-01T08:00:00Z",
        }
    )

    notification_id: NotificationId
    recipient: Recipient = Field(description="Who is notified.")
    template: TemplateCode
    params: dict[str, Annotated[str, StringConstraints(max_length=2000)]] = Field(
        default_factory=dict, description="Values for the template's placeholders."
    )
    channels: list[NotificationChannel] = Field(
        default_factory=_in_app_only, min_length=1, description="Channels to deliver on."
    )
    reference: EntityId | None = Field(
        default=None, description="What it is about (a mutation_id, a request_id…), for the inbox."
    )
    requested_by: ShortText = Field(description="The sending service.")
    requested_at: AwareDatetime = Field(description="When the command was issued.")
    send_at: AwareDatetime | None = Field(
        default=None, description="Send no earlier than this; absent means now."
    )


class DeliveryStatusChanged(EventData):
    """A notification's delivery on one channel changed status."""

    model_config = example(
        {
            "notification_id": _NOTIFICATION_ID,
            "recipient": {"kind": "agent", "id": "2019123456"},
            "channel": "email",
            "status": "delivered",
            "detail": None,
            "changed_at": "2027-05-01T08:00:03Z",
            "reason": "smtp_accepted",
            "previous_status": "sending",
            "delivery_id": "5b0f3c1e-2a4d-4e6f-8a9b-0c1d2e3f4a5b",
            "template": "mobility.dossier_opened",
            "category": "mobility",
        }
    )

    notification_id: NotificationId
    recipient: Recipient = Field(description="Who is notified.")
    channel: NotificationChannel = Field(description="The delivery channel.")
    status: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] = Field(
        description="Delivery status as notify defines it (e.g. sent, delivered, failed, read)."
    )
    detail: LongText | None = Field(default=None, description="Error or provider detail, if any.")
    changed_at: AwareDatetime = Field(description="When the status changed.")
    reason: ReasonCode | None = Field(
        default=None, description="Why the delivery is in this status (e.g. smtp_accepted)."
    )
    previous_status: DeliveryStatus | None = Field(
        default=None, description="The status before this change; absent for a new delivery."
    )
    delivery_id: EntityId | None = Field(
        default=None, description="The delivery (one channel, one address, one attempt series)."
    )
    template: TemplateCode | None = Field(
        default=None, description="Template of the notification (its code)."
    )
    category: ReasonCode | None = Field(default=None, description="Category of the template.")
