"""Notifications API: direct sends (idempotency key required), reading, cancelling, replaying."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from sqlalchemy import select
from sqlmodel import col

from atlas_events.auth import AUTH_RESPONSES, Forbidden
from atlas_events.errors import error_responses
from atlas_events.schemas._base import IsoDateTime
from atlas_events.service import RuntimeDep, SessionDep
from atlas_notify.auth import CurrentPrincipal, Principal, Role, require_roles
from atlas_notify.deps import policy_of
from atlas_notify.errors import (
    IdempotencyConflict,
    IdempotencyKeyRequired,
    MissingVariables,
    NotCancellable,
    NothingToReplay,
    NotificationNotFound,
    TemplateNotFound,
)
from atlas_notify.notifications.models import (
    Delivery,
    DeliveryPublic,
    Notification,
    NotificationCreate,
    NotificationPublic,
)
from atlas_notify.notifications.service import (
    cancel,
    create_notification,
    deliveries_of,
    recipient_of,
    replay,
    request_hash,
)

router = APIRouter(prefix="/v1", tags=["notifications"], responses=AUTH_RESPONSES)

Sender = Annotated[Principal, Depends(require_roles(Role.STAFF, Role.MANAGER, Role.ADMIN))]
Ops = Annotated[Principal, Depends(require_roles(Role.OPS))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Required: the same key returns the same notification, never a second one.",
    ),
]


def to_public(notification: Notification, deliveries: list[Delivery]) -> NotificationPublic:
    current = [d for d in deliveries if d.replaced_by is None]
    return NotificationPublic(
        id=notification.id,
        status=NotificationPublic.summary([d.status for d in current]),
        recipient=recipient_of(notification),
        template=notification.template_code,
        template_version=notification.template_version,
        category=notification.category,
        reference=notification.reference,
        requested_by=notification.requested_by,
        send_at=notification.send_at,
        created_at=notification.created_at,
        cancelled_at=notification.cancelled_at,
        deliveries=[DeliveryPublic.model_validate(d, from_attributes=True) for d in deliveries],
    )


def can_read(principal: Principal, notification: Notification) -> bool:
    if principal.is_ops or notification.requested_by == principal.sub:
        return True
    kind, rid = notification.recipient_kind, notification.recipient_id
    if kind == "agent":
        return principal.has_role(Role.AGENT) and principal.sub == rid
    if kind == "staff":
        return principal.sub == rid
    return principal.has_role(Role.STAFF, Role.MANAGER) and principal.atlas_id == rid


async def visible(session: SessionDep, principal: Principal, notification_id: str) -> Notification:
    found = await session.get(Notification, notification_id)
    if found is None or not can_read(principal, found):
        raise NotificationNotFound(f"no notification {notification_id}")
    return found


@router.post(
    "/notifications",
    status_code=201,
    summary="Send a notification from a template",
    responses=error_responses(
        IdempotencyKeyRequired, TemplateNotFound, MissingVariables, IdempotencyConflict
    ),
)
async def send(
    body: NotificationCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Sender,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> NotificationPublic:
    """201 with the new notification; 200 with the same one when the key was already used."""
    if not idempotency_key or not idempotency_key.strip():
        raise IdempotencyKeyRequired("the Idempotency-Key header is required for direct sends")
    if not (principal.is_ops or principal.has_role(Role.ADMIN)):
        rcpt = body.recipient
        if rcpt.kind == "space_staff" and rcpt.id != principal.atlas_id:
            raise Forbidden("staff may notify the staff of their own space only")
    notification, created = await create_notification(
        session,
        policy_of(runtime),
        source_key=f"api:{principal.sub}:{idempotency_key}",
        source_type="api",
        recipient=body.recipient,
        template_code=body.template,
        params=body.params,
        channels=body.channels,
        reference=body.reference,
        requested_by=principal.sub,
        send_at=body.send_at,
        hash_of_request=request_hash(body.model_dump(mode="json")),
    )
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return to_public(notification, await deliveries_of(session, notification.id))


@router.get("/notifications", summary="Notifications sent to a recipient")
async def list_notifications(
    session: SessionDep,
    principal: CurrentPrincipal,
    recipient: Annotated[str | None, Query(max_length=64)] = None,
    kind: Literal["agent", "space_staff", "staff"] = "agent",
    before: IsoDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[NotificationPublic]:
    """An agent sees only their own (recipient defaults to them); staff their space's; ops all."""
    if recipient is None:
        if principal.is_ops:
            raise Forbidden("ops must name the recipient")
        recipient = principal.atlas_id if kind == "space_staff" else principal.sub
    probe = Notification(
        id="", source_key="", source_type="", recipient_kind=kind, recipient_id=recipient or "",
        template_code="", template_version=0, category="", requested_by="",
    )  # fmt: skip
    if not can_read(principal, probe):
        raise Forbidden("you may only read your own notifications")
    query = select(Notification).where(
        col(Notification.recipient_kind) == kind, col(Notification.recipient_id) == recipient
    )
    if before is not None:
        query = query.where(col(Notification.created_at) < before)
    rows = list(
        await session.scalars(query.order_by(col(Notification.created_at).desc()).limit(limit))
    )
    deliveries: dict[str, list[Delivery]] = {n.id: [] for n in rows}
    if rows:
        for d in await session.scalars(
            select(Delivery)
            .where(col(Delivery.notification_id).in_(deliveries))
            .order_by(col(Delivery.channel), col(Delivery.target), col(Delivery.generation))
        ):
            deliveries[d.notification_id].append(d)
    return [to_public(n, deliveries[n.id]) for n in rows]


@router.get(
    "/notifications/{notification_id}",
    summary="One notification and its deliveries",
    responses=error_responses(NotificationNotFound),
)
async def get_notification(
    notification_id: str, session: SessionDep, principal: CurrentPrincipal
) -> NotificationPublic:
    """Its recipient, its sender and ops may read it."""
    notification = await visible(session, principal, notification_id)
    return to_public(notification, await deliveries_of(session, notification.id))


@router.post(
    "/notifications/{notification_id}/cancel",
    summary="Cancel what has not been sent yet",
    responses=error_responses(NotificationNotFound, NotCancellable),
)
async def cancel_notification(
    notification_id: str, session: SessionDep, runtime: RuntimeDep, principal: CurrentPrincipal
) -> NotificationPublic:
    """Deliveries still waiting (scheduled, deferred, queued) become skipped/cancelled."""
    notification = await visible(session, principal, notification_id)
    privileged = principal.is_ops or principal.has_role(Role.ADMIN)
    if not privileged and notification.requested_by != principal.sub:
        raise Forbidden("only the sender or ops may cancel a notification")
    await cancel(session, runtime.outbox, notification)
    return to_public(notification, await deliveries_of(session, notification.id))


@router.post(
    "/notifications/{notification_id}/replay",
    summary="Send again what failed and went to the DLQ",
    responses=error_responses(NotificationNotFound, NothingToReplay),
)
async def replay_notification(
    notification_id: str, session: SessionDep, runtime: RuntimeDep, principal: Ops
) -> NotificationPublic:
    """Ops only: each dead-lettered delivery gets a new attempt series; the old stays as it was."""
    notification = await visible(session, principal, notification_id)
    await replay(session, runtime.outbox, notification)
    return to_public(notification, await deliveries_of(session, notification.id))


@router.get("/dead-letters", summary="Deliveries that failed after every retry")
async def dead_letters(
    session: SessionDep,
    _: Ops,
    channel: Literal["email", "sms", "in_app"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryPublic]:
    """The notify DLQ, oldest first; replay with POST /v1/notifications/{id}/replay."""
    query = select(Delivery).where(col(Delivery.dead_lettered).is_(True))
    if channel is not None:
        query = query.where(col(Delivery.channel) == channel)
    rows = await session.scalars(query.order_by(col(Delivery.completed_at)).limit(limit))
    return [DeliveryPublic.model_validate(d, from_attributes=True) for d in rows]
