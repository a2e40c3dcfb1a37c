"""The handlers' cases: apply work items (open, update, close) and follow the requests' status.

The HR stage hands each handler's work item here in its own unit of work: the case and its
milestones are persisted, and the requests service is asked to open or close the request at the
case's space (commands made idempotent by case id). A work item whose revision the case already
holds changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_events.db import among, bulk_insert
from atlas_events.schemas import mobility, requests
from atlas_events.tracing import current_traceparent
from atlas_mobility.cases.models import (
    CLOSED_CASE_STATUSES,
    OPEN_CASE_STATUSES,
    HandlerCase,
    Milestone,
)
from atlas_mobility.context import MobilityContext
from atlas_mobility.db import table_of
from atlas_mobility.dossiers.models import Dossier
from atlas_mobility.dossiers.repository import DossierRepository
from atlas_mobility.dossiers.status import dossier_status
from atlas_mobility.events import EventSink

# How a request status (the requests service's words, and older English ones) moves its case.
REQUEST_DONE = frozenset({"terminee", "resolved", "closed", "completed", "done"})
REQUEST_DROPPED = frozenset({"refusee", "sans_suite", "rejected", "cancelled", "annulee"})
REQUEST_ACTIVE = frozenset({"en_instruction", "en_attente_usager", "in_progress", "waiting_agent"})
REQUEST_TRANSFERRED = frozenset({"transferee", "transferred"})


@dataclass(frozen=True)
class NewCase:
    """What the commands and the timeline need of a case opened in this unit of work."""

    case_id: str
    mutation_id: str
    kind: str
    agent_id: str
    atlas_id: str
    request_id: str


_DETAIL_FIELDS = ("partner", "children_count", "children", "origin_commune_insee", "zone", "title")


class CaseHandler:
    """Applies work items and request events to cases within one unit of work."""

    def __init__(
        self,
        session: AsyncSession,
        context: MobilityContext,
        sink: EventSink,
        *,
        timeline: DossierRepository | None = None,
    ) -> None:
        self.session = session
        self.context = context
        self.sink = sink
        self.timeline = timeline if timeline is not None else DossierRepository(session)
        self._cases: dict[str, HandlerCase | None] = {}
        # Cases opened in this unit of work and their milestones, inserted in bulk by `flush`
        # (building ORM objects one by one cost more than the rest of the handler together).
        self._new_cases: dict[str, dict[str, Any]] = {}
        self._new_milestones: list[dict[str, Any]] = []

    async def flush(self) -> None:
        """Write what this unit of work queued: new cases, then their milestones, the timeline."""
        if self._new_cases:
            rows, self._new_cases = list(self._new_cases.values()), {}
            await bulk_insert(self.session, table_of(HandlerCase), rows)
        if self._new_milestones:
            rows, self._new_milestones = self._new_milestones, []
            await bulk_insert(self.session, table_of(Milestone), rows)
        await self.timeline.flush()

    async def prefetch(self, case_ids: Sequence[str]) -> None:
        """Load and lock the batch's cases in one query (ordered, so batches cannot deadlock)."""
        wanted = sorted(set(case_ids) - set(self._cases) - set(self._new_cases))
        if not wanted:
            return
        rows = await self.session.scalars(
            select(HandlerCase)
            .where(among(self.session, col(HandlerCase.case_id), wanted))
            .order_by(col(HandlerCase.case_id))
            .with_for_update()
        )
        found = {c.case_id: c for c in rows}
        self._cases.update({c: found.get(c) for c in wanted})

    async def lock_dossiers(self, case_ids: Sequence[str]) -> None:
        """Lock the dossiers of these cases, in order, before any case is locked."""
        mutation_ids = sorted({c.rsplit(":", 1)[0] for c in case_ids})
        if mutation_ids:
            await self.session.execute(
                select(col(Dossier.mutation_id))
                .where(among(self.session, col(Dossier.mutation_id), mutation_ids))
                .order_by(col(Dossier.mutation_id))
                .with_for_update()
            )

    def known_absent(self, case_ids: Sequence[str]) -> None:
        """Note cases the caller knows do not exist (their dossier does not), sparing a query."""
        for case_id in case_ids:
            if case_id not in self._new_cases:
                self._cases.setdefault(case_id, None)

    async def _case(self, case_id: str) -> HandlerCase | None:
        if case_id in self._new_cases:
            # Opened earlier in this batch: write it, then change it through the ORM as usual.
            await self.flush()
            self._cases.pop(case_id, None)
        if case_id not in self._cases:
            self._cases[case_id] = await self.session.get(
                HandlerCase, case_id, with_for_update=True
            )
        return self._cases[case_id]

    # ---- work items from the decision -----------------------------------------------------------

    async def apply_item(self, kind: str, item: mobility.HandlerCase) -> bool:
        """Open or update the case from a full snapshot; False when already applied."""
        now = self.context.now()
        case = await self._case(item.case_id)
        if case is not None and case.revision >= item.revision:
            return False
        details = item.model_dump(mode="json", include=set(_DETAIL_FIELDS))
        if case is None:
            self._open(kind, item, details, now)
            return True
        summary: list[str] = []
        if case.status == "annule":
            case.status = "ouvert"
            case.outcome = None
            case.closed_at = None
            case.request_id = None
            case.request_status = None
            case.atlas_id = item.atlas_id
            self._open_request(case, item, now)
            summary.append(f"rouvert à {item.atlas_id}")
        elif case.atlas_id != item.atlas_id:
            old = case.atlas_id
            if case.status in OPEN_CASE_STATUSES:
                self._close_request(
                    case, "transferred", f"Destination modifiée : {item.atlas_id}", now
                )
                case.atlas_id = item.atlas_id
                case.request_id = None
                case.request_status = None
                case.status = "ouvert"
                self._open_request(case, item, now)
            else:
                case.atlas_id = item.atlas_id
            summary.append(f"transféré de {old} à {item.atlas_id}")
        if case.report_date != item.report_date:
            summary.append(f"date de prise de poste {case.report_date} → {item.report_date}")
        case.revision = item.revision
        case.report_date = item.report_date
        case.agent_id = item.agent_id
        case.prestation_code = item.prestation_code or case.prestation_code
        if case.details != details:
            if case.details.get("children") != details.get("children"):
                summary.append("enfants modifiés")
            case.details = details
        case.updated_at = now
        rescheduled = await self._plan(case, item.milestones)
        if rescheduled:
            summary.append(f"{rescheduled} jalon(s) replanifié(s)")
        self._record(case, item.revision, f"{kind} : " + ("; ".join(summary) or "mis à jour"))
        return True

    async def apply_closed(self, kind: str, item: mobility.HandlerCaseClosed) -> bool:
        """Close the case (need gone, dossier cancelled, moved to orientation)."""
        now = self.context.now()
        case = await self._case(item.case_id)
        if case is None:
            return False
        if item.revision is not None and case.revision >= item.revision:
            return False
        if item.revision is None and case.status not in OPEN_CASE_STATUSES:
            return False  # closed already: a redelivered close changes nothing
        if item.revision is not None:
            case.revision = item.revision
        if case.status in OPEN_CASE_STATUSES:
            self._close_request(case, item.outcome, item.reason, now)
            case.status = "annule"
            case.outcome = item.outcome
            case.closed_at = now
        case.updated_at = now
        self._record(case, item.revision, f"{kind} : dossier clos ({item.outcome})")
        return True

    # ---- status flowing back from the requests service ------------------------------------------

    async def apply_request(
        self, data: requests.RequestSubmitted | requests.RequestStatusChanged
    ) -> bool:
        """Let the case follow its request: submitted, in progress, done, dropped, moved."""
        if data.case_id is None:
            return False
        case = await self._case(data.case_id)
        if case is None or case.atlas_id != data.atlas_id:
            return False  # another service's request, or one at the space the case left
        if case.request_id is not None and case.request_id != data.request_id:
            # The id the case asked for, not confirmed yet: a requests service that chose its own
            # id for the request (an older one) is followed all the same.
            asked = case.request_status is None and case.request_id == request_id_for(
                case.case_id, case.atlas_id
            )
            if not (asked and isinstance(data, requests.RequestSubmitted)):
                return False
        now = self.context.now()
        case.request_id = data.request_id
        case.request_status = data.status
        case.updated_at = now
        if isinstance(data, requests.RequestSubmitted) or case.status not in OPEN_CASE_STATUSES:
            return True
        status = data.status
        if status in REQUEST_TRANSFERRED and data.transferred_to_atlas_id:
            # Staff moved the request to another space: the case follows it there.
            case.atlas_id = data.transferred_to_atlas_id
            case.request_id = data.transferred_to
            case.request_status = None
            self._record(case, None, f"{case.kind} : demande transférée à {case.atlas_id}")
            return True
        if status in REQUEST_DONE:
            case.status, case.outcome = "termine", "completed"
        elif status in REQUEST_DROPPED:
            case.status, case.outcome = "sans_suite", "cancelled"
        elif status in REQUEST_ACTIVE:
            case.status = "en_cours"
        if case.status in CLOSED_CASE_STATUSES:
            case.closed_at = now
            self._record(case, None, f"{case.kind} : demande {status}, dossier {case.status}")
            await self._maybe_close_dossier(case, now)
        return True

    async def confirm_requests(self, submitted: Sequence[requests.RequestSubmitted]) -> None:
        """Record the status of requests submitted under the ids their cases gave them.

        The case holds the request id since it opened; only a status not yet known is set, so
        a confirmation read again (after a crash) never overwrites a later status. One
        statement for the whole batch on PostgreSQL.
        """
        if not submitted:
            return
        now = self.context.now()
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text(
                    "UPDATE mobility_cases AS c SET request_status = v.status, updated_at = :now"
                    " FROM unnest(CAST(:case_ids AS text[]), CAST(:request_ids AS text[]),"
                    " CAST(:statuses AS text[])) AS v(case_id, request_id, status)"
                    " WHERE c.case_id = v.case_id AND c.request_id = v.request_id"
                    " AND c.request_status IS NULL"
                ),
                {
                    "now": now,
                    "case_ids": [s.case_id for s in submitted],
                    "request_ids": [s.request_id for s in submitted],
                    "statuses": [s.status for s in submitted],
                },
            )
            return
        await self.prefetch([s.case_id for s in submitted if s.case_id])
        for data in submitted:
            case = await self._case(data.case_id or "")
            known = case is not None and case.request_id == data.request_id
            if known and case is not None and case.request_status is None:
                case.request_status = data.status
                case.updated_at = now

    async def _maybe_close_dossier(self, case: HandlerCase, now: datetime) -> None:
        await self.flush()  # the query below must see the cases queued in this unit of work
        dossier = await self.session.get(Dossier, case.mutation_id, with_for_update=True)
        if dossier is None or dossier.closed_at is not None:
            return
        await self.session.flush()
        cases = list(
            (
                await self.session.scalars(
                    select(HandlerCase).where(col(HandlerCase.mutation_id) == case.mutation_id)
                )
            ).all()
        )
        if dossier_status(dossier, cases) != "clos":
            return
        dossier.closed_at = now
        self.sink.emit(
            mobility.DOSSIER_CLOSED,
            mobility.DossierClosed(
                mutation_id=dossier.mutation_id,
                agent_id=dossier.agent_id,
                destination_atlas_id=dossier.destination_atlas_id,
                reason="Toutes les démarches sont terminées",
                closed_at=now,
            ),
            key=dossier.mutation_id,
            subject=dossier.mutation_id,
        )
        self.timeline.record(
            dossier.mutation_id,
            event_type=mobility.DOSSIER_CLOSED,
            outcome="applied",
            revision=dossier.revision,
            summary="dossier clos : toutes les démarches sont terminées",
        )

    # ---- helpers --------------------------------------------------------------------------------

    def _open(
        self, kind: str, item: mobility.HandlerCase, details: dict[str, Any], now: datetime
    ) -> None:
        """Queue a new case with its milestones, its open_request command and its timeline entry."""
        self._cases.pop(item.case_id, None)  # read back from the database if needed again
        request_id = request_id_for(item.case_id, item.atlas_id)
        case = NewCase(
            case_id=item.case_id,
            mutation_id=item.mutation_id,
            kind=kind,
            agent_id=item.agent_id,
            atlas_id=item.atlas_id,
            request_id=request_id,
        )
        self._new_cases[item.case_id] = {
            "case_id": item.case_id,
            "mutation_id": item.mutation_id,
            "kind": kind,
            "agent_id": item.agent_id,
            "atlas_id": item.atlas_id,
            "status": "ouvert",
            "outcome": None,
            # The id it asks the requests service to give the request; its status comes back.
            "request_id": request_id,
            "request_status": None,
            "prestation_code": item.prestation_code,
            "revision": item.revision,
            "report_date": item.report_date,
            "details": details,
            "opened_at": now,
            "updated_at": now,
            "closed_at": None,
        }
        today = self.context.today()
        wanted = {(m.code, m.child_ref or ""): m for m in item.milestones}
        for step, plan in wanted.items():
            self._new_milestones.append(
                {
                    "case_id": item.case_id,
                    "code": plan.code,
                    "child_ref": step[1],
                    "label": plan.label,
                    "due_date": plan.due_date,
                    "urgent": plan.due_date < today,
                    "due_sent_at": None,
                    "overdue_sent_at": None,
                }
            )
        self._open_request(case, item, now)
        self._record(case, item.revision, f"{kind} : dossier ouvert à {item.atlas_id}")

    async def _plan(self, case: HandlerCase, planned: Sequence[mobility.Milestone]) -> int:
        """Make the case's milestones those planned; returns how many changed date."""
        today = self.context.today()
        existing = {
            (m.code, m.child_ref): m
            for m in (
                await self.session.scalars(
                    select(Milestone).where(col(Milestone.case_id) == case.case_id)
                )
            ).all()
        }
        wanted = {(m.code, m.child_ref or ""): m for m in planned}
        stale = [m.id for key, m in existing.items() if key not in wanted]
        if stale:
            await self.session.execute(delete(Milestone).where(col(Milestone.id).in_(stale)))
        rescheduled = 0
        for key, plan in wanted.items():
            row = existing.get(key)
            if row is None:
                self.session.add(
                    Milestone(
                        case_id=case.case_id,
                        code=plan.code,
                        child_ref=key[1],
                        label=plan.label,
                        due_date=plan.due_date,
                        urgent=plan.due_date < today,
                    )
                )
            elif row.due_date != plan.due_date:
                rescheduled += 1
                row.due_date = plan.due_date
                row.urgent = plan.due_date < today
                row.label = plan.label
                row.due_sent_at = None
                row.overdue_sent_at = None
        return rescheduled

    def _open_request(
        self, case: HandlerCase | NewCase, item: mobility.HandlerCase, now: datetime
    ) -> None:
        """Ask for the case's request at its space, under the id the case then holds."""
        if isinstance(case, HandlerCase):
            case.request_id = request_id_for(case.case_id, case.atlas_id)
        assert case.request_id is not None
        upcoming = [m.due_date for m in item.milestones if m.due_date >= now.date()]
        due = min(upcoming) if upcoming else item.report_date
        self.sink.command(
            requests.OpenRequestItem(
                command="open_request",
                traceparent=current_traceparent(),
                request_id=case.request_id,
                case_id=case.case_id,
                atlas_id=case.atlas_id,
                prestation_code=item.prestation_code or "MOB-001",
                agent_id=case.agent_id,
                channel="anticipation",
                title=item.title or f"Mutation : {case.kind}",
                mutation_id=case.mutation_id,
                case_kind=case.kind,
                due_at=_midnight(due),
                requested_at=now,
            )
        )

    def _close_request(
        self, case: HandlerCase, outcome: str, reason: str | None, now: datetime
    ) -> None:
        self.sink.command(
            requests.CloseRequestItem(
                command="close_request",
                traceparent=current_traceparent(),
                case_id=case.case_id,
                request_id=case.request_id,
                outcome=outcome,
                reason=reason,
                requested_at=now,
            )
        )

    def _record(self, case: HandlerCase | NewCase, revision: int | None, summary: str) -> None:
        self.timeline.record(
            case.mutation_id,
            event_type=f"mobility.case.{case.kind}",
            outcome="applied",
            revision=revision,
            summary=summary,
        )


# Names the request ids mobility gives the requests it asks for (UUID version 5 of case and space).
_REQUEST_IDS = uuid.UUID("5b7f0c4e-2d7a-4c1e-9f3b-6a1d8e2c4b90").bytes


def request_id_for(case_id: str, atlas_id: str) -> str:
    """The id of a case's request at a space: the same every time, so the case holds it at
    once and need not wait for the request to be read back (the requests service keeps one
    request per case and space). `uuid.uuid5`'s value, built without its objects (it ran for
    every case twice, 4 % of a worker's CPU)."""
    name = _REQUEST_IDS + f"{case_id}@{atlas_id}".encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest())  # as RFC 4122 says
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)
