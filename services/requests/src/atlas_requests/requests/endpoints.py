"""HTTP API of requests: filing, reading, queue, transitions, transfers, assignment, messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from atlas_events.auth import Principal, Role
from atlas_events.errors import error_responses
from atlas_events.schemas._base import INT32_MAX
from atlas_requests.auth import CurrentPrincipal
from atlas_requests.deps import Requests
from atlas_requests.errors import (
    BadAssignee,
    ChannelUnavailable,
    InvalidTransition,
    MessageTooLarge,
    NotAllowed,
    RequestNotFound,
    SameSpace,
    SpaceNotFound,
    UnknownPrestation,
)
from atlas_requests.requests import access
from atlas_requests.requests.models import Request, RequestMessage
from atlas_requests.requests.repository import SORTS, QueueFilter
from atlas_requests.requests.schemas import (
    AssignIn,
    AssignmentPublic,
    ChannelCode,
    HistoryPublic,
    MessageIn,
    MessagePublic,
    RequestCreate,
    RequestPage,
    RequestPublic,
    SlaPublic,
    StatusCode,
    TransferIn,
    TransitionIn,
    TransitionPublic,
)
from atlas_requests.requests.service import RequestService
from atlas_requests.requests.state import Status, allowed_moves
from atlas_requests.sla import clock

router = APIRouter(prefix="/v1/requests", tags=["requests"])
SortKey = Literal[
    "submitted_at",
    "-submitted_at",
    "sla_due_at",
    "-sla_due_at",
    "updated_at",
    "-updated_at",
    "created_at",
    "-created_at",
    "status",
    "-status",
]
assert {k.lstrip("-") for k in SortKey.__args__} <= set(SORTS)  # type: ignore[attr-defined]


async def to_public(
    service: RequestService, request: Request, principal: Principal | None = None
) -> RequestPublic:
    """The API view of a request, with its SLA figures now and the caller's allowed moves."""
    now = service.now()
    calendar = await service.calendar(request.atlas_id)
    used = clock.consumed(request, now, calendar)
    allowed: list[str] = []
    if principal is not None and access.can_see(principal, request):
        allowed = allowed_moves(Status(request.status), access.actor_of(principal, request))
    return RequestPublic(
        request_id=request.id,
        atlas_id=request.atlas_id,
        status=request.status,
        prestation_code=request.prestation_code,
        requested_prestation_code=request.requested_prestation_code,
        prestation_unverified=request.prestation_unverified,
        agent_id=request.agent_id,
        channel=request.channel,
        title=request.title,
        description=request.description,
        filed_by=request.filed_by,
        filed_by_role=request.filed_by_role,
        on_behalf=request.on_behalf,
        proxy_name=request.proxy_name,
        proxy_relationship=request.proxy_relationship,
        power_of_attorney_ref=request.power_of_attorney_ref,
        assignee=request.assignee,
        case_id=request.case_id,
        case_kind=request.case_kind,
        mutation_id=request.mutation_id,
        transferred_from=request.transferred_from,
        transferred_to=request.transferred_to,
        created_at=request.created_at,
        submitted_at=request.submitted_at,
        closed_at=request.closed_at,
        updated_at=request.updated_at,
        first_response_at=request.first_response_at,
        sla=SlaPublic(
            target_days=request.sla_target_days,
            consumed_days=round(used, 4),
            remaining_days=round(request.sla_target_days - used, 4),
            due_at=request.sla_due_at,
            paused=request.sla_running_since is None,
            warned_at=request.sla_warned_at,
            breached_at=request.sla_breached_at,
        ),
        allowed_transitions=allowed,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(NotAllowed, UnknownPrestation, ChannelUnavailable, SpaceNotFound),
)
async def file_request(
    body: RequestCreate, principal: CurrentPrincipal, service: Requests
) -> RequestPublic:
    """File a request: online by an agent (or their proxy), at the counter or by phone by staff."""
    request = await service.file(principal, body)
    return await to_public(service, request, principal)


@router.get("", responses=error_responses(NotAllowed))
async def list_requests(
    principal: CurrentPrincipal,
    service: Requests,
    atlas_id: str | None = None,
    status_: Annotated[list[StatusCode] | None, Query(alias="status")] = None,
    prestation_code: str | None = None,
    channel: ChannelCode | None = None,
    assignee: Annotated[str | None, Query(description="A staff id, or `none`.")] = None,
    sla_at_risk: bool | None = None,
    agent_id: str | None = None,
    sort: SortKey = "-submitted_at",
    page: Annotated[int, Query(ge=1, le=INT32_MAX)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RequestPage:
    """The queue: agents see theirs, staff their space, ops all; filter, sort and page it."""
    f = QueueFilter(
        statuses=list(status_ or []),
        prestation_code=prestation_code,
        channel=channel,
        assignee=None if assignee == "none" else assignee,
        unassigned=assignee == "none",
        sla_at_risk=sla_at_risk,
        agent_id=agent_id,
        now=datetime.now(UTC),
    )
    if principal.is_ops:
        f.atlas_ids = None if atlas_id is None else [atlas_id]
    elif principal.has_role(Role.STAFF, Role.MANAGER) and principal.atlas_id:
        if atlas_id not in (None, principal.atlas_id):
            raise NotAllowed(f"the token is scoped to ATLAS space {principal.atlas_id} only")
        f.atlas_ids = [principal.atlas_id]
    elif principal.has_role(Role.AGENT):
        f.visible_to_agent = principal.sub
        if atlas_id is not None:
            f.atlas_ids = [atlas_id]
    else:
        raise NotAllowed("requires role agent, staff, manager or ops")
    rows, total = await service.repo.page(
        f,
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    items = [await to_public(service, r) for r in rows]
    return RequestPage(items=items, total=total, page=page, page_size=page_size)


@router.get("/{request_id}", responses=error_responses(RequestNotFound))
async def get_request(
    request_id: str, principal: CurrentPrincipal, service: Requests
) -> RequestPublic:
    """One request, with its `status` and `atlas_id` (CONTRACTS.md §2)."""
    request = await service.get_visible(principal, request_id)
    return await to_public(service, request, principal)


@router.post(
    "/{request_id}/transitions",
    responses=error_responses(RequestNotFound, InvalidTransition, NotAllowed, ChannelUnavailable),
)
async def transition_request(
    request_id: str, body: TransitionIn, principal: CurrentPrincipal, service: Requests
) -> RequestPublic:
    """Move a request (submit, instruct, wait, close, reopen); a 409 lists the allowed moves."""
    request = await service.transition(principal, request_id, Status(body.to), body.reason)
    return await to_public(service, request, principal)


@router.post(
    "/{request_id}/transfer",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(RequestNotFound, InvalidTransition, NotAllowed, SameSpace),
)
async def transfer_request(
    request_id: str, body: TransferIn, principal: CurrentPrincipal, service: Requests
) -> RequestPublic:
    """Move a request to another space: this one closes as transferred; returns the new one."""
    new = await service.transfer(principal, request_id, body.atlas_id, body.reason)
    return await to_public(service, new, principal)


@router.get("/{request_id}/history", responses=error_responses(RequestNotFound))
async def request_history(
    request_id: str, principal: CurrentPrincipal, service: Requests
) -> HistoryPublic:
    """Every transition (who, when, why) and every assignment of a request."""
    request = await service.get_visible(principal, request_id)
    return HistoryPublic(
        request_id=request.id,
        transitions=[
            TransitionPublic.model_validate(t, from_attributes=True)
            for t in await service.repo.transitions(request.id)
        ],
        assignments=[
            AssignmentPublic.model_validate(a, from_attributes=True)
            for a in await service.repo.assignments(request.id)
        ],
    )


@router.post(
    "/{request_id}/assignment",
    responses=error_responses(RequestNotFound, NotAllowed, BadAssignee, InvalidTransition),
)
async def assign_request(
    request_id: str, body: AssignIn, principal: CurrentPrincipal, service: Requests
) -> RequestPublic:
    """Assign to a staff member of the space, or to the least loaded one with `auto`."""
    request = await service.assign(principal, request_id, body)
    return await to_public(service, request, principal)


@router.get("/{request_id}/messages", responses=error_responses(RequestNotFound))
async def list_messages(
    request_id: str, principal: CurrentPrincipal, service: Requests
) -> list[MessagePublic]:
    """The request's thread, oldest first."""
    request = await service.get_visible(principal, request_id)
    return [_message(m) for m in await service.repo.messages(request.id)]


@router.post(
    "/{request_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(RequestNotFound, MessageTooLarge, InvalidTransition),
)
async def post_message(
    request_id: str, body: MessageIn, principal: CurrentPrincipal, service: Requests
) -> MessagePublic:
    """Post a message (attachments are vault document ids); 413 when it is too large."""
    return _message(await service.post_message(principal, request_id, body))


def _message(m: RequestMessage) -> MessagePublic:
    return MessagePublic(
        message_id=m.id,
        request_id=m.request_id,
        author=m.author,
        author_role=m.author_role,
        body=m.body,
        attachments=list(m.attachments),
        posted_at=m.posted_at,
    )
