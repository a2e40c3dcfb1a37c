"""`POST /v1/hr/mutation-events`: HR events over HTTP, onto the same topic as the Kafka path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy import select

from atlas_events.auth import AUTH_RESPONSES, Principal, Role
from atlas_events.cloudevents import InvalidEvent, from_structured
from atlas_events.errors import error_responses
from atlas_events.schemas import hr
from atlas_events.service import RuntimeDep, SessionDep
from atlas_mobility.auth import require_roles
from atlas_mobility.deps import ContextDep
from atlas_mobility.dossiers.schemas import Accepted
from atlas_mobility.errors import (
    BodyTooLarge,
    InvalidCloudEvent,
    InvalidMutation,
    UnsupportedEventType,
    UnsupportedMediaType,
)

router = APIRouter(tags=["hr"])

HR_TYPES = (hr.MUTATION_ANNOUNCED, hr.MUTATION_AMENDED, hr.MUTATION_CANCELLED)
MAX_BODY = 256 * 1024
MEDIA_TYPES = ("application/cloudevents+json", "application/json")


@router.post(
    "/v1/hr/mutation-events",
    status_code=202,
    response_model=Accepted,
    summary="Post an HR mutation event (CloudEvents structured JSON)",
    responses={
        **AUTH_RESPONSES,
        **error_responses(InvalidCloudEvent, UnsupportedMediaType, BodyTooLarge, InvalidMutation),
    },
)
async def post_mutation_event(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    context: ContextDep,
    _: Annotated[Principal, Depends(require_roles(Role.HR_SYSTEM, allow_ops=False))],
) -> Accepted:
    """Accept an announced, amended or cancelled mutation; processed like one read from Kafka.

    The event is published, unchanged, to `hr.mutations.v1` keyed by agent_id (through the
    outbox, in this request's transaction), so both ingestion paths share one processing path.
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"content-type must be application/cloudevents+json, not {media_type or 'absent'}"
        )
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BodyTooLarge(f"body is {len(body)} bytes; at most {MAX_BODY} are accepted")
    try:
        event = from_structured(body)
    except InvalidEvent as exc:
        raise InvalidCloudEvent(exc.reason) from exc
    if event.type not in HR_TYPES:
        raise UnsupportedEventType(
            f"type {event.type} is not one of {', '.join(HR_TYPES)}",
        )
    try:
        data = context.registry.validate(event.type, event.data)
    except ValidationError as exc:
        raise InvalidMutation(
            "the event data does not follow the HR mutation contract",
            detail=[
                {
                    "field": ".".join(str(p) for p in e["loc"]) or "(root)",
                    "message": e["msg"],
                    "type": e["type"],
                }
                for e in exc.errors(include_url=False)
            ],
        ) from exc
    assert isinstance(data, hr.MutationSnapshot | hr.MutationCancelled)
    outbox = runtime.outbox
    already = await session.scalar(
        select(outbox.tables.outbox.c.id).where(outbox.tables.outbox.c.event_id == event.id)
    )
    status = "duplicate"
    if already is None:
        await outbox.add(session, event, key=data.agent.agent_id, topic=context.topics.hr)
        status = "accepted"
    return Accepted(
        status=status,
        id=event.id,
        type=event.type,
        mutation_id=data.mutation_id,
        revision=data.revision,
    )
