"""Creating notifications once, planning their deliveries and moving deliveries between states."""

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from atlas_events.cloudevents import CloudEvent
from atlas_events.db import rowcount
from atlas_events.outbox import Outbox
from atlas_events.schemas.notify import (
    DELIVERY_STATUS_CHANGED,
    DeliveryStatusChanged,
    Recipient,
)
from atlas_notify import metrics
from atlas_notify.db import as_utc, utcnow
from atlas_notify.directory.repository import DirectoryRepository
from atlas_notify.dispatch.wakeup import request_dispatch
from atlas_notify.errors import (
    IdempotencyConflict,
    IllegalTransition,
    NotCancellable,
    NothingToReplay,
)
from atlas_notify.notifications.models import Delivery, Notification
from atlas_notify.notifications.simulator import SIMULATED_AGENTS
from atlas_notify.notifications.states import TERMINAL, Status, check_transition
from atlas_notify.preferences.policy import QuietHours, opted_out
from atlas_notify.templates.models import CRITICAL, RenderedMessage, Template
from atlas_notify.templates.rendering import render
from atlas_notify.templates.service import get_template

SOURCE = "urn:atlas:notify"
_ID_NAMESPACE = uuid.UUID("6c1f7d0e-93a4-4b5e-9f1e-0a7b1c2d3e4f")


@dataclass(frozen=True)
class Target:
    """One place a channel delivers to, or why it cannot."""

    kind: str  # agent, staff or space
    id: str
    address: str | None = None
    user_id: str | None = None  # whose preferences apply
    digest: bool = False
    skip_reason: str | None = None


@dataclass(frozen=True)
class NotifyPolicy:
    """What creating a notification needs to know besides the database."""

    outbox: Outbox
    quiet_hours: QuietHours


def notification_id(source_key: str, recipient: Recipient, template: str) -> str:
    """Deterministic: the same source, recipient and template always name the same notification."""
    return str(
        uuid.uuid5(_ID_NAMESPACE, f"{source_key}|{recipient.kind}|{recipient.id}|{template}")
    )


def request_hash(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def recipient_of(notification: Notification) -> Recipient:
    return Recipient(kind=notification.recipient_kind, id=notification.recipient_id)


async def emit(
    session: AsyncSession,
    outbox: Outbox,
    notification: Notification,
    delivery: Delivery,
    *,
    previous: str | None,
    at: datetime,
) -> None:
    """Put the delivery's current status on notify.deliveries.v1 through the outbox."""
    detail = (delivery.detail or "")[:2000] or None
    data = DeliveryStatusChanged(
        notification_id=notification.id,
        recipient=recipient_of(notification),
        channel=delivery.channel,
        status=delivery.status,
        detail=detail,
        changed_at=at,
        reason=delivery.reason,
        previous_status=previous,
        delivery_id=delivery.id,
        template=notification.template_code,
        category=notification.category,
    )
    await outbox.add(
        session,
        CloudEvent.create(DELIVERY_STATUS_CHANGED, SOURCE, data, subject=delivery.id),
        key=notification.id,
    )


async def transition_many(
    session: AsyncSession,
    outbox: Outbox,
    items: Sequence[tuple[Notification, Delivery]],
    new: Status,
    reason: str,
    *,
    detail: str | None = None,
    at: datetime | None = None,
    **changes: object,
) -> list[tuple[Notification, Delivery]]:
    """Move deliveries sharing one status to `new` in one statement; return those refused.

    The state machine is checked first; then a compare-and-set on the stored status lets a
    concurrent change of a row (another dispatcher, a cancel) win instead of being overwritten.
    """
    if not items:
        return []
    now = at or utcnow()
    previous = items[0][1].status
    if any(d.status != previous for _, d in items):
        raise ValueError("transition_many needs deliveries in one status")
    check_transition(previous, new)
    values: dict[str, object] = {
        "status": new.value,
        "reason": reason,
        "detail": detail,
        "updated_at": now,
        **changes,
    }
    if new in TERMINAL:
        values["completed_at"] = now
    table = Delivery.__table__  # type: ignore[attr-defined]
    moved = set(
        (
            await session.execute(
                update(table)
                .where(table.c.id.in_([d.id for _, d in items]), table.c.status == previous)
                .values(**values)
                .returning(table.c.id)
            )
        ).scalars()
    )
    refused = []
    for notification, delivery in items:
        if delivery.id not in moved:
            refused.append((notification, delivery))
            continue
        for name, value in values.items():
            set_committed_value(delivery, name, value)
        await emit(session, outbox, notification, delivery, previous=previous, at=now)
        if new in TERMINAL:
            metrics.count_final(session, delivery.channel, new.value)
    return refused


async def transition(
    session: AsyncSession,
    outbox: Outbox,
    notification: Notification,
    delivery: Delivery,
    new: Status,
    reason: str,
    *,
    detail: str | None = None,
    at: datetime | None = None,
    **changes: object,
) -> None:
    """Move one delivery to `new`; IllegalTransition if the machine or the stored status refuse."""
    previous = delivery.status
    refused = await transition_many(
        session, outbox, [(notification, delivery)], new, reason, detail=detail, at=at, **changes
    )
    if refused:
        raise IllegalTransition(f"delivery {delivery.id} is no longer {previous}")


async def resolve_targets(
    session: AsyncSession, recipient: Recipient, channel: str, *, critical: bool
) -> list[Target]:
    """Where `channel` reaches `recipient`; a target with a skip_reason when it cannot."""
    directory = DirectoryRepository(session)
    if recipient.kind == "agent":
        if channel == "in_app":
            return [Target("agent", recipient.id, user_id=recipient.id)]
        contact = await directory.contact(recipient.id)
        email, phone = (contact.email, contact.phone) if contact else (None, None)
        if recipient.id in SIMULATED_AGENTS and contact is None:
            email, phone = SIMULATED_AGENTS[recipient.id]
        address = email if channel == "email" else phone
        skip = None
        if address is None:
            skip = "no_email_address" if channel == "email" else "no_phone_number"
        return [Target("agent", recipient.id, address, recipient.id, skip_reason=skip)]
    if recipient.kind == "staff":
        member = await directory.staff_member(recipient.id)
        if channel == "in_app":
            return [Target("staff", recipient.id, user_id=recipient.id)]
        if member is None or not member.active:
            return [
                Target("staff", recipient.id, user_id=recipient.id, skip_reason="unknown_staff")
            ]
        address = member.email if channel == "email" else member.phone
        skip = (
            None if address else ("no_email_address" if channel == "email" else "no_phone_number")
        )
        digest = channel == "email" and member.digest and not critical
        return [Target("staff", member.staff_id, address, member.staff_id, digest, skip)]
    # A space's staff: one shared inbox, and every staff member's own e-mail and phone.
    if channel == "in_app":
        return [Target("space", recipient.id)]
    staff = await directory.staff_of(recipient.id)
    targets = [
        Target(
            "staff",
            m.staff_id,
            m.email if channel == "email" else m.phone,
            m.staff_id,
            digest=channel == "email" and m.digest and not critical,
        )
        for m in staff
        if (m.email if channel == "email" else m.phone)
    ]
    if not targets:
        reason = "no_staff_email" if channel == "email" else "no_staff_phone"
        if not staff:
            reason = "no_staff_in_directory"
        return [Target("space", recipient.id, skip_reason=reason)]
    return targets


def _content(message: RenderedMessage, channel: str) -> tuple[str | None, str | None]:
    if channel == "email":
        return message.email_subject, message.email_body
    if channel == "sms":
        return None, message.sms_body
    return message.in_app_title, message.in_app_body


async def _insert_once(session: AsyncSession, values: dict[str, object]) -> bool:
    """INSERT the notification unless the unique constraint already holds one (no exception)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(Notification).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(rowcount(result))


async def create_notification(
    session: AsyncSession,
    policy: NotifyPolicy,
    *,
    source_key: str,
    source_type: str,
    recipient: Recipient,
    template_code: str,
    params: dict[str, str],
    channels: Sequence[str] | None,
    reference: str | None,
    requested_by: str,
    send_at: datetime | None = None,
    hash_of_request: str | None = None,
) -> tuple[Notification, bool]:
    """The notification for (source, recipient, template), created with its deliveries if new."""
    template = await get_template(session, template_code)
    message = render(template, params)  # all or nothing: MissingVariables before any write
    nid = notification_id(source_key, recipient, template_code)
    now = utcnow()
    wanted = list(dict.fromkeys(channels or template.channels()))
    inserted = await _insert_once(
        session,
        {
            "id": nid,
            "source_key": source_key,
            "source_type": source_type,
            "recipient_kind": recipient.kind,
            "recipient_id": recipient.id,
            "template_code": template.code,
            "template_version": template.version,
            "category": template.category,
            "params": params,
            "channels": wanted,
            "reference": reference,
            "requested_by": requested_by,
            "request_hash": hash_of_request,
            "send_at": send_at,
            "created_at": now,
        },
    )
    notification = await session.get(Notification, nid)
    assert notification is not None
    if not inserted:
        if hash_of_request is not None and notification.request_hash != hash_of_request:
            raise IdempotencyConflict(
                "this idempotency key was used for a different request",
                detail={"notification_id": nid},
            )
        return notification, False
    await _plan_deliveries(session, policy, notification, template, message, wanted, now)
    return notification, True


async def _plan_deliveries(
    session: AsyncSession,
    policy: NotifyPolicy,
    notification: Notification,
    template: Template,
    message: RenderedMessage,
    channels: list[str],
    now: datetime,
) -> None:
    critical = template.category == CRITICAL
    recipient = recipient_of(notification)
    request_dispatch(session)
    start = max(now, as_utc(notification.send_at)) if notification.send_at else now
    for channel in channels:
        if channel not in template.channels():
            targets = [Target(recipient.kind, recipient.id, skip_reason="no_text_for_channel")]
        else:
            targets = await resolve_targets(session, recipient, channel, critical=critical)
        subject, body = _content(message, channel)
        for target in targets:
            not_before = notification.send_at
            reason = "scheduled" if notification.send_at and start > now else "accepted"
            deferred = policy.quiet_hours.defer(start, category=template.category, channel=channel)
            if deferred is not None:
                not_before, reason = deferred, "deferred_quiet_hours"
            if target.digest:
                reason = "digest_pending"
            delivery = Delivery(
                id=str(uuid.uuid4()),
                notification_id=notification.id,
                channel=channel,
                target_kind=target.kind,
                target=target.id,
                address=target.address,
                status=Status.CREATED.value,
                reason=reason,
                critical=critical,
                digest=target.digest,
                not_before=not_before,
                subject=subject,
                body=body,
                created_at=now,
                updated_at=now,
            )
            session.add(delivery)
            await session.flush()
            await emit(session, policy.outbox, notification, delivery, previous=None, at=now)
            skip = target.skip_reason
            if (
                skip is None
                and target.user_id is not None
                and await opted_out(session, target.user_id, template.category, channel)
            ):
                skip = "preference_opt_out"
            if skip is not None:
                await transition(
                    session, policy.outbox, notification, delivery, Status.SKIPPED, skip, at=now
                )


async def deliveries_of(session: AsyncSession, notification_id: str) -> list[Delivery]:
    rows = await session.scalars(
        select(Delivery)
        .where(col(Delivery.notification_id) == notification_id)
        .order_by(col(Delivery.channel), col(Delivery.target), col(Delivery.generation))
    )
    return list(rows)


async def cancel(session: AsyncSession, outbox: Outbox, notification: Notification) -> int:
    """Skip every delivery still waiting (created); NotCancellable when none is."""
    waiting = [
        d for d in await deliveries_of(session, notification.id) if d.status == Status.CREATED
    ]
    if not waiting:
        raise NotCancellable(f"notification {notification.id} has nothing left to cancel")
    now = utcnow()
    for delivery in waiting:
        await transition(
            session, outbox, notification, delivery, Status.SKIPPED, "cancelled", at=now
        )
    await session.execute(
        update(Notification).where(col(Notification.id) == notification.id).values(cancelled_at=now)
    )
    set_committed_value(notification, "cancelled_at", now)
    return len(waiting)


async def replay(
    session: AsyncSession, outbox: Outbox, notification: Notification
) -> list[Delivery]:
    """Start a new generation for each dead-lettered delivery; the failed ones stay as they were."""
    parked = [d for d in await deliveries_of(session, notification.id) if d.dead_lettered]
    if not parked:
        raise NothingToReplay(f"notification {notification.id} has nothing in the DLQ")
    request_dispatch(session)
    now = utcnow()
    fresh: list[Delivery] = []
    for old in parked:
        new = Delivery(
            id=str(uuid.uuid4()),
            notification_id=notification.id,
            channel=old.channel,
            target_kind=old.target_kind,
            target=old.target,
            address=old.address,
            generation=old.generation + 1,
            status=Status.CREATED.value,
            reason="replayed",
            detail=f"replay of {old.id}",
            critical=old.critical,
            digest=False,  # a replay goes out on its own, not in tomorrow's digest
            subject=old.subject,
            body=old.body,
            created_at=now,
            updated_at=now,
        )
        session.add(new)
        await session.execute(
            update(Delivery)
            .where(col(Delivery.id) == old.id)
            .values(dead_lettered=False, replaced_by=new.id)
        )
        set_committed_value(old, "dead_lettered", False)
        set_committed_value(old, "replaced_by", new.id)
        await session.flush()
        await emit(session, outbox, notification, new, previous=None, at=now)
        fresh.append(new)
    return fresh
