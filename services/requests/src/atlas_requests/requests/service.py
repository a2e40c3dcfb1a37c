"""The request lifecycle: filing, transitions, transfers, assignment, messages, SLA reporting.

Every change records who, when and why in the same transaction as its event in the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from opentelemetry import context as otel_context
from pydantic import BaseModel
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.auth import Principal, Role
from atlas_events.cloudevents import CloudEvent
from atlas_events.db import bulk_insert
from atlas_events.outbox import NewEvent, Outbox
from atlas_events.schemas import requests as ev
from atlas_events.schemas.requests import CloseRequest, OpenRequest
from atlas_requests.catalog.models import CatalogPrestation, CatalogSpace
from atlas_requests.catalog.service import CatalogReplica, check_channel
from atlas_requests.config import RequestsSettings
from atlas_requests.errors import (
    BadAssignee,
    InvalidTransition,
    MessageTooLarge,
    NotAllowed,
    RequestNotFound,
    SameSpace,
)
from atlas_requests.requests import access
from atlas_requests.requests.models import (
    Request,
    RequestAssignment,
    RequestMessage,
    RequestTransition,
    StaffMember,
)
from atlas_requests.requests.repository import RequestRepository
from atlas_requests.requests.schemas import AssignIn, MessageIn, RequestCreate
from atlas_requests.requests.state import (
    CHANNEL_ALIASES,
    CLOCK_RUNNING,
    CLOSED_STATUSES,
    TRANSFERABLE,
    Actor,
    Channel,
    Status,
    allowed_moves,
    can_move,
)
from atlas_requests.sla import clock
from atlas_requests.sla.calendar import BusinessCalendar, calendar_for

log = structlog.get_logger(__name__)
SOURCE = "urn:atlas:requests"
SYSTEM = "mobility"
_CLOSE_OUTCOMES = {
    "completed": Status.TERMINEE,
    "cancelled": Status.SANS_SUITE,
    "transferred": Status.TRANSFEREE,
}


def utcnow() -> datetime:
    return datetime.now(UTC)


_REQUESTS = cast(Table, Request.__table__)  # type: ignore[attr-defined]
_TRANSITIONS = cast(Table, RequestTransition.__table__)  # type: ignore[attr-defined]


@dataclass
class _SlaClock:
    """The SLA fields `clock.run` sets, for a request written in bulk (no ORM object)."""

    sla_target_days: float
    sla_consumed_days: float = 0.0
    sla_running_since: datetime | None = None
    sla_due_at: datetime | None = None
    sla_warn_at: datetime | None = None


def _live(prestation: CatalogPrestation | None) -> CatalogPrestation | None:
    """A replica prestation that can still be requested (`find_prestation`'s rule)."""
    return None if prestation is None or prestation.withdrawn else prestation


@dataclass(frozen=True)
class Who:
    """Who acts: a subject and the role they act in (agent, proxy, staff, system)."""

    sub: str
    role: str


class RequestService:
    """Use cases on requests inside one unit of work (the caller commits)."""

    def __init__(
        self,
        session: AsyncSession,
        outbox: Outbox,
        settings: RequestsSettings,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.settings = settings
        self.now = now
        self.repo = RequestRepository(session)
        self.catalog = CatalogReplica(session)
        self._calendars: dict[str, BusinessCalendar] = {}

    # ---- helpers ------------------------------------------------------------------------------

    async def calendar(self, atlas_id: str) -> BusinessCalendar:
        """The business calendar of a space (looked up once per unit of work)."""
        cached = self._calendars.get(atlas_id)
        if cached is None:
            space = await self.catalog.find_space(atlas_id)
            cached = calendar_for(space.departement if space is not None else None)
            self._calendars[atlas_id] = cached
        return cached

    def _target(self, prestation: CatalogPrestation | None) -> float:
        if prestation is not None and prestation.sla_days:
            return float(prestation.sla_days)
        return float(self.settings.default_sla_days)

    async def _emit(self, type_: str, data: BaseModel, key: str) -> None:
        await self.outbox.add(self.session, CloudEvent.create(type_, SOURCE, data), key=key)

    async def _record(
        self, request: Request, previous: Status | None, who: Who, reason: str | None, now: datetime
    ) -> None:
        self.session.add(
            RequestTransition(
                request_id=request.id,
                from_status=None if previous is None else previous.value,
                to_status=request.status,
                actor=who.sub,
                actor_role=who.role,
                reason=reason,
                at=now,
            )
        )

    async def _submitted(self, request: Request) -> None:
        assert request.submitted_at is not None
        await self._emit(
            ev.REQUEST_SUBMITTED,
            ev.RequestSubmitted(
                request_id=request.id,
                atlas_id=request.atlas_id,
                prestation_code=request.prestation_code,
                agent_id=request.agent_id,
                channel=request.channel,
                title=request.title,
                status=request.status,
                mutation_id=request.mutation_id,
                case_id=request.case_id,
                sla_due_at=request.sla_due_at,
                submitted_at=request.submitted_at,
                filed_by=None if request.filed_by == request.agent_id else request.filed_by,
                on_behalf=request.on_behalf,
                transferred_from=request.transferred_from,
                requested_prestation_code=request.requested_prestation_code,
            ),
            request.id,
        )

    async def _status_changed(
        self,
        request: Request,
        previous: Status,
        who: Who,
        reason: str | None,
        now: datetime,
        to_atlas: str | None = None,
    ) -> None:
        await self._emit(
            ev.REQUEST_STATUS_CHANGED,
            ev.RequestStatusChanged(
                request_id=request.id,
                atlas_id=request.atlas_id,
                agent_id=request.agent_id,
                previous_status=previous.value,
                status=request.status,
                reason=reason,
                case_id=request.case_id,
                changed_at=now,
                changed_by=None if who.role == "system" else who.sub,
                transferred_to=request.transferred_to,
                transferred_to_atlas_id=to_atlas,
            ),
            request.id,
        )

    async def get_visible(self, principal: Principal, request_id: str) -> Request:
        request = await self.repo.get(request_id)
        if request is None:
            raise RequestNotFound(f"request {request_id} not found")
        access.ensure_visible(principal, request)
        return request

    async def _get_for_update(self, request_id: str) -> Request:
        request = await self.repo.get(request_id, for_update=True)
        if request is None:
            raise RequestNotFound(f"request {request_id} not found")
        return request

    def _first_response(self, request: Request, actor: Actor, now: datetime) -> None:
        if actor == Actor.STAFF and request.first_response_at is None and request.submitted_at:
            request.first_response_at = now

    # ---- filing ---------------------------------------------------------------------------------

    async def file(self, principal: Principal, body: RequestCreate) -> Request:
        """File a request online (agent, maybe as proxy) or at the counter / by phone (staff)."""
        now = self.now()
        staff_like = principal.is_ops or principal.has_role(Role.STAFF, Role.MANAGER)
        if body.atlas_id is not None:
            space = await self.catalog.space(body.atlas_id)
        elif body.commune_insee is not None:
            space = await self.catalog.space_for_commune(body.commune_insee)
        elif staff_like and principal.atlas_id:
            space = await self.catalog.space(principal.atlas_id)
        else:
            raise NotAllowed("name the space (atlas_id) or the commune (commune_insee)")

        if staff_like and access.is_staff_of(principal, space.atlas_id):
            if body.agent_id is None:
                raise NotAllowed("staff filing a request must name the agent (agent_id)")
            channel = Channel(body.channel or "guichet")
            agent_id = body.agent_id
            role = "staff"
        elif principal.has_role(Role.AGENT):
            if body.channel not in (None, "en_ligne"):
                raise NotAllowed("agents file online (en_ligne); staff record counter and phone")
            channel = Channel.EN_LIGNE
            agent_id = body.agent_id or principal.sub
            role = "agent"
            if agent_id != principal.sub:
                if body.proxy is None:
                    raise NotAllowed("filing for another agent needs a power of attorney (proxy)")
                role = "proxy"
        else:
            raise NotAllowed(
                f"only agents, or staff of ATLAS space {space.atlas_id}, may file here"
            )

        prestation = await self.catalog.prestation(body.prestation_code)
        check_channel(prestation, space, channel)
        request = Request(
            id=str(uuid.uuid4()),
            atlas_id=space.atlas_id,
            prestation_code=prestation.code,
            agent_id=agent_id,
            filed_by=principal.sub,
            filed_by_role=role,
            on_behalf=body.proxy is not None,
            proxy_name=body.proxy.name if body.proxy else None,
            proxy_relationship=body.proxy.relationship if body.proxy else None,
            power_of_attorney_ref=body.proxy.power_of_attorney_ref if body.proxy else None,
            channel=channel.value,
            title=body.title,
            description=body.description,
            status=Status.BROUILLON.value,
            sla_target_days=self._target(prestation),
            created_at=now,
            updated_at=now,
        )
        self.session.add(request)
        who = Who(principal.sub, role)
        await self._record(request, None, who, "brouillon", now)
        if not body.draft:
            await self._submit(request, who, now, space)
        return request

    async def _submit(
        self, request: Request, who: Who, now: datetime, space: CatalogSpace | None
    ) -> None:
        request.status = Status.SOUMISE.value
        request.submitted_at = now
        request.updated_at = now
        calendar = calendar_for(space.departement if space is not None else None)
        clock.run(request, now, calendar, self.settings.sla_warning_ratio)
        await self._record(request, Status.BROUILLON, who, None, now)
        await self._submitted(request)

    # ---- transitions ----------------------------------------------------------------------------

    async def transition(
        self, principal: Principal, request_id: str, target: Status, reason: str | None
    ) -> Request:
        """Move a request as the state machine allows for the caller (409 lists what is allowed)."""
        request = await self._get_for_update(request_id)
        actor = access.actor_of(principal, request)
        current = Status(request.status)
        if not can_move(current, target, actor):
            if actor == Actor.REQUESTER and can_move(current, target, Actor.STAFF):
                raise NotAllowed(
                    f"a {actor.value} may not move a request from {current.value} to"
                    f" {target.value}",
                    detail={
                        "message": f"only staff may move a request to {target.value}",
                        "status": current.value,
                        "allowed": allowed_moves(current, actor),
                    },
                )
            raise InvalidTransition(
                request.id, current.value, target.value, allowed_moves(current, actor)
            )
        if current == Status.BROUILLON and target == Status.SOUMISE:
            prestation = await self.catalog.prestation(request.prestation_code)
            space = await self.catalog.space(request.atlas_id)
            check_channel(prestation, space, Channel(request.channel))
            await self._submit(request, Who(principal.sub, actor.value), self.now(), space)
            return request
        await self._move(request, target, Who(principal.sub, actor.value), reason, actor)
        return request

    async def _move(
        self,
        request: Request,
        target: Status,
        who: Who,
        reason: str | None,
        actor: Actor,
        to_atlas: str | None = None,
    ) -> None:
        now = self.now()
        previous = Status(request.status)
        calendar = await self.calendar(request.atlas_id)
        request.status = target.value
        request.updated_at = now
        if target in CLOCK_RUNNING:
            clock.run(request, now, calendar, self.settings.sla_warning_ratio)
        else:
            clock.halt(request, now, calendar)
        if target in CLOSED_STATUSES:
            request.closed_at = now
        elif previous in CLOSED_STATUSES:
            request.closed_at = None  # reopened
        self._first_response(request, actor, now)
        await self._record(request, previous, who, reason, now)
        await self._status_changed(request, previous, who, reason, now, to_atlas)

    async def transfer(
        self, principal: Principal, request_id: str, atlas_id: str, reason: str
    ) -> Request:
        """Close here as transferred, linking the new request opened at the other space."""
        request = await self._get_for_update(request_id)
        access.ensure_visible(principal, request)
        access.ensure_staff(principal, request.atlas_id, "transfer a request")
        space = await self.catalog.space(atlas_id)
        return await self._transfer(request, space.atlas_id, Who(principal.sub, "staff"), reason)

    async def _transfer(
        self, request: Request, atlas_id: str, who: Who, reason: str, *, new_id: str | None = None
    ) -> Request:
        current = Status(request.status)
        if current not in TRANSFERABLE:
            raise InvalidTransition(
                request.id,
                current.value,
                Status.TRANSFEREE.value,
                allowed_moves(current, Actor.STAFF),
            )
        if atlas_id == request.atlas_id:
            raise SameSpace(f"request {request.id} is already at ATLAS space {atlas_id}")
        now = self.now()
        space = await self.catalog.find_space(atlas_id)
        new = Request(
            id=new_id or str(uuid.uuid4()),
            atlas_id=atlas_id,
            prestation_code=request.prestation_code,
            requested_prestation_code=request.requested_prestation_code,
            prestation_unverified=request.prestation_unverified,
            agent_id=request.agent_id,
            filed_by=request.filed_by,
            filed_by_role=request.filed_by_role,
            on_behalf=request.on_behalf,
            proxy_name=request.proxy_name,
            proxy_relationship=request.proxy_relationship,
            power_of_attorney_ref=request.power_of_attorney_ref,
            channel=request.channel,
            title=request.title,
            description=request.description,
            status=Status.BROUILLON.value,
            case_id=request.case_id,
            case_kind=request.case_kind,
            mutation_id=request.mutation_id,
            transferred_from=request.id,
            sla_target_days=request.sla_target_days,
            created_at=now,
            updated_at=now,
        )
        self.session.add(new)
        await self._record(new, None, who, f"transfert depuis {request.atlas_id}", now)
        await self._submit(new, who, now, space)
        request.transferred_to = new.id
        await self.session.flush()  # the new request exists before the old one names it
        await self._move(request, Status.TRANSFEREE, who, reason, Actor.STAFF, to_atlas=atlas_id)
        return new

    # ---- mobility commands ----------------------------------------------------------------------

    async def open_for_case(self, command: OpenRequest) -> Request:
        """Open the case's request at the space; the same command again opens nothing new."""
        existing = await self.repo.by_case(command.case_id)
        for request in existing:
            if request.atlas_id == command.atlas_id:
                return request
        now = self.now()
        who = Who(SYSTEM, "system")
        elsewhere = [r for r in existing if Status(r.status) in TRANSFERABLE]
        if elsewhere:
            # A changed destination: the open request moves, closing as transferred.
            return await self._transfer(
                elsewhere[-1],
                command.atlas_id,
                who,
                "destination modifiée (mobilité)",
                new_id=command.request_id,
            )
        requested = await self.catalog.find_prestation(command.prestation_code)
        prestation = requested
        requested_code: str | None = None
        if requested is None:
            # Never lose the command: fall back on the case kind's default prestation, flagged.
            requested_code = command.prestation_code
            default = self.settings.anticipation_prestations.get(
                command.case_kind or "", self.settings.anticipation_prestations.get("")
            )
            prestation = await self.catalog.find_prestation(default) if default else None
            log.warning(
                "open_request_unknown_prestation",
                case_id=command.case_id,
                prestation_code=command.prestation_code,
                fallback=prestation.code if prestation else None,
            )
        space = await self.catalog.find_space(command.atlas_id)
        channel = CHANNEL_ALIASES.get(command.channel) or Channel(command.channel)
        request = Request(
            id=command.request_id or str(uuid.uuid4()),
            atlas_id=command.atlas_id,
            prestation_code=prestation.code if prestation else command.prestation_code,
            requested_prestation_code=requested_code,
            prestation_unverified=prestation is None,
            agent_id=command.agent_id,
            filed_by=SYSTEM,
            filed_by_role="system",
            channel=channel.value,
            title=command.title,
            status=Status.BROUILLON.value,
            case_id=command.case_id,
            case_kind=command.case_kind,
            mutation_id=command.mutation_id,
            sla_target_days=self._target(prestation),
            created_at=now,
            updated_at=now,
        )
        self.session.add(request)
        await self._record(request, None, who, "ouverture par anticipation", now)
        await self._submit(request, who, now, space)
        return request

    async def open_many_for_cases(
        self,
        commands: Sequence[OpenRequest],
        *,
        each: Callable[[int], AbstractContextManager[object]] | None = None,
    ) -> None:
        """`open_for_case` for a run of commands, in order, with a few statements in all.

        What is new (no request for the case yet) is written in bulk: requests, their two
        transitions and their `submitted` events; a case whose request must move (another space)
        goes through `open_for_case`. `each(i)` wraps the work of command i (its trace span).
        """
        if not commands:
            return
        now = self.now()
        who = Who(SYSTEM, "system")
        case_ids = sorted({c.case_id for c in commands})
        existing: dict[str, list[Request]] = {c: [] for c in case_ids}
        for request in await self.repo.by_cases(case_ids):
            if request.case_id is not None:
                existing[request.case_id].append(request)
        codes = {c.prestation_code for c in commands} | set(
            self.settings.anticipation_prestations.values()
        )
        prestations = await self.catalog.prestations(codes)
        spaces = await self.catalog.spaces({c.atlas_id for c in commands})
        pending: dict[str, dict[str, Any]] = {}  # case id -> new request row
        clocks: dict[tuple[Any, str | None], dict[str, datetime | None]] = {}
        transitions: list[dict[str, Any]] = []
        events: list[NewEvent] = []  # each event's data a model: validated once, here

        async def write() -> None:
            if pending:
                # Core statements on the tables: the ORM's per-object work is what this avoids.
                await bulk_insert(self.session, _REQUESTS, list(pending.values()))
                await bulk_insert(self.session, _TRANSITIONS, transitions)
                await self.outbox.add_new(self.session, SOURCE, events, packed=True)
                pending.clear()
                transitions.clear()
                events.clear()

        for i, command in enumerate(commands):
            with each(i) if each is not None else nullcontext():
                queued = pending.get(command.case_id)
                if queued is not None and queued["atlas_id"] == command.atlas_id:
                    continue
                if any(r.atlas_id == command.atlas_id for r in existing[command.case_id]):
                    continue
                if queued is not None or existing[command.case_id]:
                    # The request moves to another space: the usual path, after what is queued.
                    await write()
                    await self.open_for_case(command)
                    continue
                prestation = _live(prestations.get(command.prestation_code))
                requested_code: str | None = None
                if prestation is None:
                    requested_code = command.prestation_code
                    default = self.settings.anticipation_prestations.get(
                        command.case_kind or "", self.settings.anticipation_prestations.get("")
                    )
                    prestation = _live(prestations.get(default)) if default else None
                    log.warning(
                        "open_request_unknown_prestation",
                        case_id=command.case_id,
                        prestation_code=command.prestation_code,
                        fallback=prestation.code if prestation else None,
                    )
                space = spaces.get(command.atlas_id)
                channel = CHANNEL_ALIASES.get(command.channel) or Channel(command.channel)
                row: dict[str, Any] = {
                    "id": command.request_id or str(uuid.uuid4()),
                    "atlas_id": command.atlas_id,
                    "prestation_code": prestation.code if prestation else command.prestation_code,
                    "requested_prestation_code": requested_code,
                    "prestation_unverified": prestation is None,
                    "agent_id": command.agent_id,
                    "filed_by": SYSTEM,
                    "filed_by_role": "system",
                    "on_behalf": False,
                    "channel": channel.value,
                    "title": command.title,
                    "status": Status.SOUMISE.value,
                    "case_id": command.case_id,
                    "case_kind": command.case_kind,
                    "mutation_id": command.mutation_id,
                    "sla_target_days": self._target(prestation),
                    "sla_consumed_days": 0.0,
                    "created_at": now,
                    "submitted_at": now,
                    "updated_at": now,
                }
                # One `now` for the whole run: requests of a target at a département share
                # their deadlines, computed once.
                departement = space.departement if space is not None else None
                deadlines = clocks.get((row["sla_target_days"], departement))
                if deadlines is None:
                    sla = _SlaClock(row["sla_target_days"])
                    calendar = calendar_for(departement)
                    clock.run(cast(Request, sla), now, calendar, self.settings.sla_warning_ratio)
                    deadlines = {
                        "sla_running_since": sla.sla_running_since,
                        "sla_due_at": sla.sla_due_at,
                        "sla_warn_at": sla.sla_warn_at,
                    }
                    clocks[(row["sla_target_days"], departement)] = deadlines
                row.update(deadlines)
                pending[command.case_id] = row
                for previous, status, reason in (
                    (None, Status.BROUILLON, "ouverture par anticipation"),
                    (Status.BROUILLON, Status.SOUMISE, None),
                ):
                    transitions.append(
                        {
                            "request_id": row["id"],
                            "from_status": None if previous is None else previous.value,
                            "to_status": status.value,
                            "actor": who.sub,
                            "actor_role": who.role,
                            "reason": reason,
                            "at": now,
                        }
                    )
                submitted = ev.RequestSubmitted(
                    request_id=row["id"],
                    atlas_id=row["atlas_id"],
                    prestation_code=row["prestation_code"],
                    agent_id=row["agent_id"],
                    channel=row["channel"],
                    title=row["title"],
                    status=row["status"],
                    mutation_id=row["mutation_id"],
                    case_id=row["case_id"],
                    sla_due_at=row["sla_due_at"],
                    submitted_at=now,
                    filed_by=SYSTEM,
                    on_behalf=False,
                    transferred_from=None,
                    requested_prestation_code=requested_code,
                )
                events.append(
                    NewEvent(
                        ev.REQUEST_SUBMITTED, submitted, row["id"], None, otel_context.get_current()
                    )
                )
        await write()

    async def apply_case_commands(
        self,
        commands: Sequence[ev.CaseCommand],
        *,
        each: Callable[[int], AbstractContextManager[object]] | None = None,
    ) -> None:
        """A batch of commands in order: runs of open_request in bulk, each close on its own."""
        start = 0
        while start < len(commands):
            command = commands[start]
            if isinstance(command, ev.CloseRequestItem):
                with each(start) if each is not None else nullcontext():
                    await self.close_for_case(command)
                start += 1
                continue
            end = start
            while end < len(commands) and isinstance(commands[end], ev.OpenRequestItem):
                end += 1
            offset = start
            await self.open_many_for_cases(
                commands[start:end],  # type: ignore[arg-type]
                each=None if each is None else (lambda i, offset=offset: each(offset + i)),  # type: ignore[misc]
            )
            start = end

    async def close_for_case(self, command: CloseRequest) -> Request | None:
        """Close the case's open request with the outcome; nothing to close is no error."""
        candidates = await self.repo.by_case(command.case_id)
        if command.request_id is not None:
            candidates = [r for r in candidates if r.id == command.request_id] or [
                r
                for r in [await self.repo.get(command.request_id, for_update=True)]
                if r is not None
            ]
        open_ = [r for r in candidates if Status(r.status) not in CLOSED_STATUSES]
        if not open_:
            log.info("close_request_nothing_open", case_id=command.case_id)
            return None
        target = _CLOSE_OUTCOMES[command.outcome]
        who = Who(SYSTEM, "system")
        reason = command.reason or f"clôture demandée par la mobilité ({command.outcome})"
        for request in open_:
            to_atlas = None
            if target == Status.TRANSFEREE:
                newer = [r for r in candidates if r.atlas_id != request.atlas_id]
                request.transferred_to = newer[-1].id if newer else None
                to_atlas = newer[-1].atlas_id if newer else None
            await self._move(request, target, who, reason, Actor.SYSTEM, to_atlas)
        return open_[-1]

    # ---- assignment ----------------------------------------------------------------------------

    async def assign(self, principal: Principal, request_id: str, body: AssignIn) -> Request:
        """Assign by hand to a roster member, or to the least loaded one (`auto`)."""
        request = await self._get_for_update(request_id)
        access.ensure_visible(principal, request)
        access.ensure_staff(principal, request.atlas_id, "assign requests")
        if Status(request.status) in CLOSED_STATUSES:
            raise InvalidTransition(
                request.id,
                request.status,
                "assignment",
                allowed_moves(Status(request.status), Actor.STAFF),
            )
        if body.auto or body.assignee is None:  # the schema requires one of them
            roster = await self.repo.roster(request.atlas_id)
            roster = [(s, n) for s, n in roster if s != request.assignee] or roster
            if not roster:
                raise BadAssignee(f"ATLAS space {request.atlas_id} has nobody on its staff roster")
            assignee, mode, by = roster[0][0], "auto", None
        else:
            if await self.repo.staff_member(request.atlas_id, body.assignee) is None:
                raise BadAssignee(
                    f"{body.assignee} is not on the staff roster of {request.atlas_id}"
                )
            assignee, mode, by = body.assignee, "manual", principal.sub
        now = self.now()
        self.session.add(
            RequestAssignment(
                request_id=request.id,
                assignee=assignee,
                previous_assignee=request.assignee,
                assigned_by=by,
                mode=mode,
                at=now,
            )
        )
        request.assignee = assignee
        request.updated_at = now
        await self._emit(
            ev.REQUEST_ASSIGNED,
            ev.RequestAssigned(
                request_id=request.id,
                atlas_id=request.atlas_id,
                assignee=assignee,
                assigned_by=by,
                assigned_at=now,
            ),
            request.id,
        )
        return request

    async def add_staff(self, atlas_id: str, staff_id: str, by: str) -> StaffMember:
        member = await self.repo.staff_member(atlas_id, staff_id)
        if member is None:
            member = StaffMember(
                atlas_id=atlas_id, staff_id=staff_id, added_by=by, added_at=self.now()
            )
            self.session.add(member)
        return member

    async def remove_staff(self, atlas_id: str, staff_id: str) -> None:
        member = await self.repo.staff_member(atlas_id, staff_id)
        if member is not None:
            await self.session.delete(member)

    # ---- messages ------------------------------------------------------------------------------

    async def post_message(
        self, principal: Principal, request_id: str, body: MessageIn
    ) -> RequestMessage:
        """Post in the thread (413 when too large); staff's first message is the first response."""
        if len(body.body) > self.settings.max_message_chars:
            raise MessageTooLarge(
                f"message is {len(body.body)} characters, over the limit of"
                f" {self.settings.max_message_chars}",
                detail={
                    "message": "message too large",
                    "length": len(body.body),
                    "max_chars": self.settings.max_message_chars,
                },
            )
        if len(body.attachments) > self.settings.max_attachments:
            raise MessageTooLarge(
                f"{len(body.attachments)} attachments, over the limit of"
                f" {self.settings.max_attachments}"
            )
        request = await self._get_for_update(request_id)
        actor = access.actor_of(principal, request)
        if Status(request.status) == Status.TRANSFEREE:
            raise InvalidTransition(request.id, request.status, "message", [])
        now = self.now()
        message = RequestMessage(
            id=str(uuid.uuid4()),
            request_id=request.id,
            author=principal.sub,
            author_role="staff" if actor == Actor.STAFF else "agent",
            body=body.body,
            attachments=list(body.attachments),
            posted_at=now,
        )
        self.session.add(message)
        self._first_response(request, actor, now)
        request.updated_at = now
        await self._emit(
            ev.REQUEST_MESSAGE_POSTED,
            ev.RequestMessagePosted(
                request_id=request.id,
                atlas_id=request.atlas_id,
                agent_id=request.agent_id,
                message_id=message.id,
                author_role=message.author_role,
                author=principal.sub,
                posted_at=now,
            ),
            request.id,
        )
        return message

    # ---- SLA ------------------------------------------------------------------------------------

    async def report_sla(self, limit: int = 500) -> int:
        """Emit the warnings and breaches that are due now; returns how many were emitted."""
        now = self.now()
        emitted = 0
        for request in await self.repo.sla_due(now, limit):
            if request.sla_due_at is None:
                continue
            if request.sla_warned_at is None and request.sla_warn_at and request.sla_warn_at <= now:
                request.sla_warned_at = now
                emitted += 1
                await self._emit(
                    ev.REQUEST_SLA_WARNING,
                    ev.RequestSlaWarning(
                        request_id=request.id,
                        atlas_id=request.atlas_id,
                        assignee=request.assignee,
                        sla_due_at=request.sla_due_at,
                        warned_at=now,
                    ),
                    request.id,
                )
            if request.sla_breached_at is None and request.sla_due_at <= now:
                request.sla_breached_at = now
                emitted += 1
                await self._emit(
                    ev.REQUEST_SLA_BREACHED,
                    ev.RequestSlaBreached(
                        request_id=request.id,
                        atlas_id=request.atlas_id,
                        assignee=request.assignee,
                        sla_due_at=request.sla_due_at,
                        breached_at=now,
                    ),
                    request.id,
                )
        return emitted
