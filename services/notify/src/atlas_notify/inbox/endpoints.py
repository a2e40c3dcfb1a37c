"""The in-app inbox: list, mark read, and a server-sent events stream for the gateways."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_, select, update
from sqlmodel import col

from atlas_events.auth import AUTH_RESPONSES, Forbidden
from atlas_events.errors import error_responses
from atlas_events.schemas._base import IsoDateTime
from atlas_events.service import RuntimeDep, SessionDep
from atlas_notify.auth import CurrentPrincipal, Principal
from atlas_notify.db import as_utc, utcnow
from atlas_notify.errors import InboxItemNotFound
from atlas_notify.notifications.models import Delivery, Notification
from atlas_notify.notifications.states import Status

router = APIRouter(prefix="/v1/inbox", tags=["inbox"], responses=AUTH_RESPONSES)

KEEPALIVE_SECONDS = 15.0


class InboxItem(BaseModel):
    id: str
    notification_id: str
    title: str | None
    body: str | None
    category: str
    template: str
    reference: str | None
    delivered_at: datetime
    read_at: datetime | None


def _item(delivery: Delivery, notification: Notification) -> InboxItem:
    assert delivery.completed_at is not None
    return InboxItem(
        id=delivery.id,
        notification_id=notification.id,
        title=delivery.subject,
        body=delivery.body,
        category=notification.category,
        template=notification.template_code,
        reference=notification.reference,
        delivered_at=as_utc(delivery.completed_at),
        read_at=delivery.read_at,
    )


def _targets(
    principal: Principal, kind: str | None, recipient: str | None
) -> list[tuple[str, str]]:
    """(target_kind, target) pairs whose inbox the caller reads."""
    if recipient is not None:
        target_kind = {"agent": "agent", "space_staff": "space", "staff": "staff"}[kind or "agent"]
        allowed = principal.is_ops or (target_kind, recipient) in _targets(principal, None, None)
        if not allowed:
            raise Forbidden("you may only read your own inbox")
        return [(target_kind, recipient)]
    targets = [("agent", principal.sub), ("staff", principal.sub)]
    if principal.atlas_id and principal.has_role("staff", "manager"):
        targets.append(("space", principal.atlas_id))
    return targets


def _inbox_query(targets: list[tuple[str, str]]) -> Select[Delivery, Notification]:
    return (
        select(Delivery, Notification)
        .join(Notification, col(Notification.id) == col(Delivery.notification_id))
        .where(
            col(Delivery.channel) == "in_app",
            col(Delivery.status) == Status.DELIVERED.value,
            or_(
                *(
                    and_(col(Delivery.target_kind) == k, col(Delivery.target) == t)
                    for k, t in targets
                )
            ),
        )
    )


Kind = Literal["agent", "space_staff", "staff"]


@router.get("", summary="The caller's inbox, newest first")
async def list_inbox(
    session: SessionDep,
    principal: CurrentPrincipal,
    unread: bool = False,
    recipient: Annotated[str | None, Query(max_length=64)] = None,
    kind: Kind | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[InboxItem]:
    """Agents read theirs; staff theirs and their space's; ops any recipient's."""
    query = _inbox_query(_targets(principal, kind, recipient))
    if unread:
        query = query.where(col(Delivery.read_at).is_(None))
    rows = await session.execute(query.order_by(col(Delivery.completed_at).desc()).limit(limit))
    return [_item(d, n) for d, n in rows]


@router.post(
    "/{item_id}/read",
    summary="Mark an inbox item read",
    responses=error_responses(InboxItemNotFound),
)
async def mark_read(item_id: str, session: SessionDep, principal: CurrentPrincipal) -> InboxItem:
    """Idempotent: the first read time stays."""
    row = (
        await session.execute(
            _inbox_query(_targets(principal, None, None)).where(col(Delivery.id) == item_id)
        )
    ).first()
    if row is None:
        raise InboxItemNotFound(f"no inbox item {item_id}")
    delivery, notification = row
    if delivery.read_at is None:
        now = utcnow()
        await session.execute(
            update(Delivery)
            .where(col(Delivery.id) == item_id, col(Delivery.read_at).is_(None))
            .values(read_at=now)
        )
        delivery.read_at = now
    return _item(delivery, notification)


@router.get(
    "/stream",
    summary="New inbox items as server-sent events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    recipient: Annotated[str | None, Query(max_length=64)] = None,
    kind: Kind | None = None,
    since: IsoDateTime | None = Query(None, description="Start after this time (default: now)."),
    limit: Annotated[int | None, Query(ge=1, description="Close after this many items.")] = None,
    poll: Annotated[float, Query(ge=0.05, le=10)] = 0.5,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """`event: notification` per delivered in-app item; the id resumes with Last-Event-ID."""
    targets = _targets(principal, kind, recipient)
    cursor = _parse_cursor(last_event_id) or ((as_utc(since) if since else utcnow()), "")

    async def events() -> AsyncIterator[bytes]:
        nonlocal cursor
        sent = 0
        last_write = time.monotonic()
        yield b"retry: 2000\n\n"
        while limit is None or sent < limit:
            if await request.is_disconnected():
                return
            at, after_id = cursor
            async with runtime.db.transaction() as session:
                rows = (
                    await session.execute(
                        _inbox_query(targets)
                        .where(
                            or_(
                                col(Delivery.completed_at) > at,
                                and_(col(Delivery.completed_at) == at, col(Delivery.id) > after_id),
                            )
                        )
                        .order_by(col(Delivery.completed_at), col(Delivery.id))
                        .limit(100)
                    )
                ).all()
                batch = [_item(d, n) for d, n in rows]
            for item in batch:
                cursor = (item.delivered_at, item.id)
                event_id = f"{item.delivered_at.isoformat()}|{item.id}"
                payload = json.dumps(item.model_dump(mode="json"), ensure_ascii=False)
                yield f"id: {event_id}\nevent: notification\ndata: {payload}\n\n".encode()
                last_write = time.monotonic()
                sent += 1
                if limit is not None and sent >= limit:
                    return
            if time.monotonic() - last_write > KEEPALIVE_SECONDS:
                yield b": keepalive\n\n"
                last_write = time.monotonic()
            if not batch:
                await asyncio.sleep(poll)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _parse_cursor(value: str | None) -> tuple[datetime, str] | None:
    if not value or "|" not in value:
        return None
    at, _, item_id = value.partition("|")
    try:
        return as_utc(datetime.fromisoformat(at)), item_id
    except ValueError:
        return None
