"""The mission desk: applies a batch of HR mission events in the caller's transaction.

One mission per mission_id; a revision not above the mission's is recorded on its timeline and
changes nothing. An announcement opens the departure case at the ATLAS space covering the home
commune (`a_orienter` when none does, or the commune is unknown) with its milestones and one
request per linked prestation (open_request commands keyed by request key, idempotent at the
requests service); a return (or the planned return date passing) opens the return case. All of
it, with the published facts, goes to the outbox in the same transaction: no internal Kafka hop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from opentelemetry import trace
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_events.cloudevents import CloudEvent
from atlas_events.db import bulk_insert
from atlas_events.schemas import missions as ms
from atlas_events.schemas import requests
from atlas_events.tracing import batch_links, consume_span, current_traceparent
from atlas_mobility.context import MobilityContext
from atlas_mobility.db import table_of
from atlas_mobility.events import EventSink
from atlas_mobility.missions.models import (
    OPEN_MISSION_STATUSES,
    Mission,
    MissionCase,
    MissionMilestone,
    MissionTimelineEntry,
)
from atlas_mobility.missions.policy import MissionPolicy, load_mission_policy
from atlas_mobility.spaces.models import SpaceReplica
from atlas_mobility.spaces.service import SpaceDirectory

DEPART = "depart_mission"
RETOUR = "retour_mission"
SNAPSHOT_PARTS = (
    "agent",
    "home_commune_insee",
    "kind",
    "theatre",
    "departure_date",
    "planned_return_date",
    "household",
    "options",
)
_OUTCOME_WORDS = {"duplicate": "doublon", "stale": "périmée"}
MissionEvent = ms.MissionAnnounced | ms.MissionAmended | ms.MissionCancelled | ms.MissionReturned


tracer = trace.get_tracer(__name__)


def apply_missions(
    context: MobilityContext,
) -> Callable[[AsyncSession, EventSink, Sequence[Any]], Awaitable[None]]:
    """The stream's batch function for hr.missions.v1: the whole batch in the caller's
    transaction (missions, cases, milestones, timeline, outbox rows)."""

    async def apply(session: AsyncSession, sink: EventSink, deliveries: Sequence[Any]) -> None:
        desk = MissionDesk(session, context, sink)
        await desk.prefetch([d.data for d in deliveries])
        links = batch_links()  # the batch's span, opened by the stream processor
        for delivery in deliveries:
            # A mission's commands travel under its HR partition: they keep their order.
            sink.command_key = f"missions:{delivery.raw.partition}"
            with consume_span(
                tracer,
                f"{delivery.raw.topic} process",
                delivery.raw.headers,
                {
                    "messaging.consumer.group.name": "mobility",
                    "cloudevents.event_type": delivery.event.type,
                },
                links=links,
            ):
                await desk.apply(delivery.event, delivery.data)
        await desk.flush()

    return apply


def case_id(mission_id: str, kind: str) -> str:
    return f"{mission_id}:{kind}"


def request_key(case: str, prestation: str) -> str:
    """The case id the requests service knows one request by (one per linked prestation)."""
    return f"{case}:{prestation}"


def flag_key(mission_id: str) -> str:
    return f"{mission_id}:retour_non_signale"


class MissionDesk:
    """Applies mission events (and the missing-return check) within one unit of work."""

    def __init__(
        self,
        session: AsyncSession,
        context: MobilityContext,
        sink: EventSink,
        policy: MissionPolicy | None = None,
    ) -> None:
        self.session = session
        self.context = context
        self.sink = sink
        self.policy = policy or load_mission_policy()
        self.spaces = SpaceDirectory(session, context.refdata_dir)
        self._missions: dict[str, Mission | None] = {}
        self._cases: dict[str, MissionCase] = {}
        self._resolved: dict[str, SpaceReplica | None] = {}
        self._timeline: list[dict[str, Any]] = []

    # ---- the batch ------------------------------------------------------------------------------

    async def apply_batch(self, batch: Sequence[tuple[CloudEvent, MissionEvent]]) -> list[str]:
        """Apply the batch's events in order; returns each one's timeline outcome."""
        await self.prefetch([data for _, data in batch])
        outcomes = [await self.apply(event, data) for event, data in batch]
        await self.flush()
        return outcomes

    async def prefetch(self, events: Sequence[MissionEvent]) -> None:
        """Lock the batch's missions (sorted, so batches cannot deadlock), load their cases,
        resolve the home communes: a few queries for the whole batch."""
        ids = sorted({e.mission_id for e in events} - set(self._missions))
        if ids:
            rows = await self.session.scalars(
                select(Mission)
                .where(col(Mission.mission_id).in_(ids))
                .order_by(col(Mission.mission_id))
                .with_for_update()
            )
            found = {m.mission_id: m for m in rows}
            self._missions.update({m: found.get(m) for m in ids})
            cases = await self.session.scalars(
                select(MissionCase).where(col(MissionCase.mission_id).in_(ids))
            )
            self._cases.update({c.case_id: c for c in cases})
        communes = {e.home_commune_insee for e in events if isinstance(e, ms.MissionSnapshot)}
        self._resolved.update(await self.spaces.resolve_many(communes - set(self._resolved)))

    async def flush(self) -> None:
        """Write the ORM changes, then the timeline in one statement."""
        await self.session.flush()
        if self._timeline:
            rows, self._timeline = self._timeline, []
            await bulk_insert(self.session, table_of(MissionTimelineEntry), rows)

    async def apply(self, event: CloudEvent, data: MissionEvent) -> str:
        mission = self._missions.get(data.mission_id)
        if data.mission_id not in self._missions:
            mission = await self.session.get(Mission, data.mission_id, with_for_update=True)
            self._missions[data.mission_id] = mission
        if mission is not None and data.revision <= mission.revision:
            outcome = "duplicate" if data.revision == mission.revision else "stale"
            self._record(
                data.mission_id,
                event,
                data.revision,
                outcome,
                f"révision {data.revision} ignorée ({_OUTCOME_WORDS[outcome]}, "
                f"révision courante {mission.revision})",
            )
            return outcome
        if isinstance(data, ms.MissionCancelled):
            self._cancel(event, data, mission)
        elif isinstance(data, ms.MissionReturned):
            await self._returned(event, data, mission)
        elif mission is None or mission.snapshot is None:
            await self._open(event, data, mission)
        else:
            await self._amend(event, data, mission)
        return "applied"

    # ---- the kinds of change --------------------------------------------------------------------

    async def _open(
        self, event: CloudEvent, data: ms.MissionSnapshot, tombstone: Mission | None
    ) -> None:
        now = self.context.now()
        space = await self._resolve(data.home_commune_insee)
        if tombstone is None:
            mission = Mission(
                mission_id=data.mission_id,
                revision=data.revision,
                agent_id=data.agent.agent_id,
                status="ouvert",
                announced_at=event.time if event.time and event.time <= now else now,
                updated_at=now,
            )
            self.session.add(mission)
            self._missions[data.mission_id] = mission
        else:
            mission = tombstone
            mission.cancelled_at = None
            mission.cancel_reason = None
        self._fill(mission, data, space, now)
        case = self._open_case(mission, DEPART, data, data.departure_date, now)
        self._emit(ms.MISSION_OPENED, mission, opened_at=now, agent_email=data.agent.email)
        where = (
            f"à l'espace {space.name} ; demandes {', '.join(case.prestation_codes)}"
            if space is not None
            else (
                f"à orienter (commune {data.home_commune_insee} couverte par aucun espace"
                " ou inconnue)"
            )
        )
        self._record(
            data.mission_id, event, data.revision, "applied", f"mission annoncée : départ {where}"
        )

    async def _amend(self, event: CloudEvent, data: ms.MissionSnapshot, mission: Mission) -> None:
        now = self.context.now()
        assert mission.snapshot is not None
        before = mission.snapshot
        after = data.model_dump(mode="json")
        changes = [p for p in SNAPSHOT_PARTS if before.get(p) != after.get(p)]
        space = await self._resolve(data.home_commune_insee)
        reopened = mission.status == "annule"
        mission.cancelled_at = None
        mission.cancel_reason = None
        self._fill(mission, data, space, now)
        summary: list[str] = []
        for kind, reference in ((DEPART, data.departure_date), (RETOUR, mission.return_date)):
            case = self._cases.get(case_id(mission.mission_id, kind))
            if kind == RETOUR and case is None:
                continue
            if case is None or case.status == "annule":
                if kind == DEPART:
                    self._open_case(mission, kind, data, reference or data.departure_date, now)
                    summary.append("départ rouvert")
                continue
            if kind == RETOUR and reference is None:
                reference = data.planned_return_date
            assert reference is not None
            summary += await self._update_case(mission, case, data, reference, now)
        if mission.status != "en_retour":
            mission.status = "ouvert" if space is not None else "a_orienter"
        self._emit(ms.MISSION_AMENDED_FACT, mission, changes=changes, amended_at=now)
        text = "mission modifiée : " + (", ".join(changes) if changes else "aucun changement")
        if summary:
            text += " ; " + "; ".join(summary)
        if reopened:
            text += " ; mission rouverte"
        self._record(data.mission_id, event, data.revision, "applied", text)

    def _cancel(
        self, event: CloudEvent, data: ms.MissionCancelled, mission: Mission | None
    ) -> None:
        now = self.context.now()
        if mission is None:
            mission = Mission(
                mission_id=data.mission_id,
                revision=data.revision,
                agent_id=data.agent.agent_id,
                status="annule",
                announced_at=now,
                updated_at=now,
            )
            self.session.add(mission)
            self._missions[data.mission_id] = mission
        for case in self._cases_of(mission.mission_id):
            self._close_case(case, "cancelled", data.reason, now)
        mission.revision = data.revision
        mission.status = "annule"
        mission.cancelled_at = now
        mission.cancel_reason = data.reason
        mission.updated_at = now
        if mission.snapshot is not None:
            self._emit(ms.MISSION_CANCELLED_FACT, mission, reason=data.reason, cancelled_at=now)
        self._record(
            data.mission_id, event, data.revision, "applied", f"mission annulée : {data.reason}"
        )

    async def _returned(
        self, event: CloudEvent, data: ms.MissionReturned, mission: Mission | None
    ) -> None:
        now = self.context.now()
        if mission is None or mission.snapshot is None or mission.status == "annule":
            if mission is None:
                mission = Mission(
                    mission_id=data.mission_id,
                    revision=data.revision,
                    agent_id=data.agent.agent_id,
                    status="inconnu",
                    announced_at=now,
                    updated_at=now,
                )
                self.session.add(mission)
                self._missions[data.mission_id] = mission
            mission.revision = data.revision
            mission.return_date = data.return_date
            mission.updated_at = now
            self._record(
                data.mission_id,
                event,
                data.revision,
                "ignored",
                f"retour le {data.return_date} d'une mission non annoncée ou annulée : rien ouvert",
            )
            return
        mission.revision = data.revision
        mission.return_date = data.return_date
        mission.updated_at = now
        snapshot = ms.MissionSnapshot.model_validate(mission.snapshot)
        depart = self._cases.get(case_id(mission.mission_id, DEPART))
        if depart is not None:  # its open requests close as completed (a_orienter: none)
            self._close_case(depart, "completed", "Retour de mission", now, status="termine")
        retour = self._cases.get(case_id(mission.mission_id, RETOUR))
        if retour is None:
            self._open_case(mission, RETOUR, snapshot, data.return_date, now)
            what = "dossier de retour ouvert"
        else:  # opened by the missing-return check: its dates follow the actual return
            await self._plan(retour, RETOUR, data.return_date)
            retour.reference_date = data.return_date
            retour.updated_at = now
            what = "dossier de retour replanifié sur la date réelle"
        mission.status = "en_retour"
        self._emit(
            ms.MISSION_RETURN_OPENED,
            mission,
            return_date=data.return_date,
            trigger="returned",
            opened_at=now,
            agent_email=snapshot.agent.email,
        )
        self._record(
            data.mission_id,
            event,
            data.revision,
            "applied",
            f"retour de mission le {data.return_date} : {what}",
        )

    # ---- missing returns ------------------------------------------------------------------------

    async def flag_missing_returns(self, *, limit: int = 500) -> int:
        """Flag, once, each mission whose planned return passed with no returned event: a
        timeline entry, a fact, a request at the space, then the return case."""
        today = self.context.today()
        now = self.context.now()
        rows = list(
            (
                await self.session.scalars(
                    select(Mission)
                    .where(
                        col(Mission.status).in_(OPEN_MISSION_STATUSES),
                        col(Mission.return_date).is_(None),
                        col(Mission.return_flagged_at).is_(None),
                        col(Mission.planned_return_date) < today,
                    )
                    .order_by(col(Mission.mission_id))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if not rows:
            return 0
        ids = [m.mission_id for m in rows]
        cases = await self.session.scalars(
            select(MissionCase).where(col(MissionCase.mission_id).in_(ids))
        )
        self._cases.update({c.case_id: c for c in cases})
        for mission in rows:
            assert mission.snapshot is not None
            assert mission.planned_return_date is not None
            snapshot = ms.MissionSnapshot.model_validate(mission.snapshot)
            mission.return_flagged_at = now
            mission.updated_at = now
            self._emit(ms.MISSION_RETURN_OVERDUE, mission, flagged_at=now)
            if mission.atlas_id is not None:
                missing = self.policy.missing_return
                self._open_request(
                    flag_key(mission.mission_id),
                    mission,
                    RETOUR,
                    missing.prestation_code,
                    missing.title,
                    today,
                    now,
                )
            if case_id(mission.mission_id, RETOUR) not in self._cases:
                self._open_case(mission, RETOUR, snapshot, mission.planned_return_date, now)
            mission.status = "en_retour"
            self._emit(
                ms.MISSION_RETURN_OPENED,
                mission,
                return_date=mission.planned_return_date,
                trigger="overdue",
                opened_at=now,
                agent_email=snapshot.agent.email,
            )
            self._record(
                mission.mission_id,
                None,
                mission.revision,
                "flagged",
                f"retour prévu le {mission.planned_return_date} non signalé : signalé à "
                f"{mission.atlas_id or 'la cellule nationale'}, dossier de retour ouvert",
                event_type=ms.MISSION_RETURN_OVERDUE,
            )
        await self.flush()
        return len(rows)

    # ---- cases ----------------------------------------------------------------------------------

    def _open_case(
        self,
        mission: Mission,
        kind: str,
        data: ms.MissionSnapshot,
        reference: date,
        now: datetime,
    ) -> MissionCase:
        cid = case_id(mission.mission_id, kind)
        case = self._cases.get(cid)
        codes = self.policy.prestations(kind, data) if mission.atlas_id else []
        status = "ouvert" if mission.atlas_id is not None else "a_orienter"
        if case is None:
            case = MissionCase(
                case_id=cid,
                mission_id=mission.mission_id,
                kind=kind,
                agent_id=mission.agent_id,
                atlas_id=mission.atlas_id,
                status=status,
                prestation_codes=codes,
                reference_date=reference,
                opened_at=now,
                updated_at=now,
            )
            self.session.add(case)
            self._cases[cid] = case
            for step in self.policy.case(kind).milestones:
                self.session.add(
                    MissionMilestone(
                        case_id=cid, code=step.code, label=step.label, due_date=step.due(reference)
                    )
                )
        else:  # reopened after a cancellation
            case.status, case.atlas_id, case.prestation_codes = status, mission.atlas_id, codes
            case.closed_at, case.updated_at, case.reference_date = None, now, reference
        due = self._first_due(kind, reference)
        for code in codes:
            self._open_request(
                request_key(cid, code),
                mission,
                kind,
                code,
                self.policy.title(kind, mission.kind or "other", code),
                due,
                now,
            )
        return case

    async def _update_case(
        self,
        mission: Mission,
        case: MissionCase,
        data: ms.MissionSnapshot,
        reference: date,
        now: datetime,
    ) -> list[str]:
        """Follow a new snapshot: space moved, dates moved, prestations added or removed."""
        notes: list[str] = []
        if case.status not in ("ouvert", "a_orienter"):
            return notes
        wanted = self.policy.prestations(case.kind, data) if mission.atlas_id else []
        if case.atlas_id != mission.atlas_id:
            for code in case.prestation_codes:
                self._close_request(
                    request_key(case.case_id, code),
                    "transferred",
                    f"Commune de résidence modifiée : {mission.atlas_id or 'à orienter'}",
                    now,
                )
            notes.append(f"{case.kind} transféré à {mission.atlas_id or 'à orienter'}")
            case.atlas_id = mission.atlas_id
            case.prestation_codes = []
            case.status = "ouvert" if mission.atlas_id is not None else "a_orienter"
        if case.reference_date != reference:
            moved = await self._plan(case, case.kind, reference)
            notes.append(f"{case.kind} : {moved} jalon(s) replanifié(s)")
            case.reference_date = reference
        due = self._first_due(case.kind, reference)
        for code in [c for c in wanted if c not in case.prestation_codes]:
            self._open_request(
                request_key(case.case_id, code),
                mission,
                case.kind,
                code,
                self.policy.title(case.kind, mission.kind or "other", code),
                due,
                now,
            )
            notes.append(f"demande {code} ouverte")
        for code in [c for c in case.prestation_codes if c not in wanted]:
            self._close_request(
                request_key(case.case_id, code), "cancelled", "Besoin retiré par HR", now
            )
            notes.append(f"demande {code} close")
        case.prestation_codes = list(wanted)
        case.updated_at = now
        return notes

    async def _plan(self, case: MissionCase, kind: str, reference: date) -> int:
        """Reschedule the case's milestones from a new reference date; returns how many moved."""
        steps = {s.code: s for s in self.policy.case(kind).milestones}
        rows = (
            await self.session.scalars(
                select(MissionMilestone).where(col(MissionMilestone.case_id) == case.case_id)
            )
        ).all()
        moved = 0
        for row in rows:
            step = steps.get(row.code)
            if step is None:
                await self.session.execute(
                    delete(MissionMilestone).where(col(MissionMilestone.id) == row.id)
                )
                continue
            due = step.due(reference)
            if row.due_date != due:
                row.due_date = due
                moved += 1
        return moved

    def _close_case(
        self,
        case: MissionCase,
        outcome: str,
        reason: str,
        now: datetime,
        *,
        status: str = "annule",
    ) -> None:
        if case.status not in ("ouvert", "a_orienter"):
            return
        for code in case.prestation_codes:
            self._close_request(request_key(case.case_id, code), outcome, reason, now)
        case.status = status
        case.closed_at = now
        case.updated_at = now

    def _cases_of(self, mission_id: str) -> list[MissionCase]:
        return [c for c in self._cases.values() if c.mission_id == mission_id]

    def _first_due(self, kind: str, reference: date) -> date:
        today = self.context.today()
        dues = [s.due(reference) for s in self.policy.case(kind).milestones]
        upcoming = [d for d in dues if d >= today]
        return min(upcoming) if upcoming else today

    # ---- commands, facts, timeline --------------------------------------------------------------

    def _open_request(
        self,
        key: str,
        mission: Mission,
        kind: str,
        prestation: str,
        title: str,
        due: date,
        now: datetime,
    ) -> None:
        assert mission.atlas_id is not None
        self.sink.command(
            requests.OpenRequestItem(
                command="open_request",
                traceparent=current_traceparent(),
                case_id=key,
                atlas_id=mission.atlas_id,
                prestation_code=prestation,
                agent_id=mission.agent_id,
                channel="anticipation",
                title=title,
                case_kind=kind,
                due_at=datetime.combine(due, time(0, 0), tzinfo=UTC),
                requested_at=now,
            )
        )

    def _close_request(self, key: str, outcome: str, reason: str, now: datetime) -> None:
        self.sink.command(
            requests.CloseRequestItem(
                command="close_request",
                traceparent=current_traceparent(),
                case_id=key,
                outcome=outcome,
                reason=reason[:2000],
                requested_at=now,
            )
        )

    def _emit(self, event_type: str, mission: Mission, **fields: Any) -> None:
        assert mission.kind is not None
        assert mission.home_commune_insee is not None
        assert mission.departure_date is not None
        assert mission.planned_return_date is not None
        model = self.context.registry.event_type(event_type).data
        cases = [
            ms.MissionCaseRef(
                case_id=c.case_id,
                kind=c.kind,
                atlas_id=c.atlas_id,
                prestation_codes=list(c.prestation_codes),
            )
            for c in self._cases_of(mission.mission_id)
        ]
        extra = {k: v for k, v in fields.items() if v is not None}
        data = model.model_validate(
            {
                "mission_id": mission.mission_id,
                "revision": mission.revision,
                "agent_id": mission.agent_id,
                "kind": mission.kind,
                "status": mission.status if mission.status != "inconnu" else "annule",
                "atlas_id": mission.atlas_id,
                "home_commune_insee": mission.home_commune_insee,
                "departure_date": mission.departure_date,
                "planned_return_date": mission.planned_return_date,
                "cases": cases,
                **extra,
            }
        )
        self.sink.emit(event_type, data, key=mission.mission_id, subject=mission.mission_id)

    def _record(
        self,
        mission_id: str,
        event: CloudEvent | None,
        revision: int | None,
        outcome: str,
        summary: str,
        *,
        event_type: str | None = None,
    ) -> None:
        self._timeline.append(
            {
                "mission_id": mission_id,
                "revision": revision,
                "event_id": event.id if event is not None else None,
                "event_type": event_type or (event.type if event is not None else "mobility"),
                "outcome": outcome,
                "summary": summary[:2000],
                "recorded_at": datetime.now(UTC),
            }
        )

    # ---- helpers --------------------------------------------------------------------------------

    async def _resolve(self, commune: str) -> SpaceReplica | None:
        if commune not in self._resolved:
            self._resolved[commune] = await self.spaces.resolve(commune)
        return self._resolved[commune]

    def _fill(
        self, mission: Mission, data: ms.MissionSnapshot, space: SpaceReplica | None, now: datetime
    ) -> None:
        mission.revision = data.revision
        mission.agent_id = data.agent.agent_id
        mission.kind = data.kind
        mission.home_commune_insee = data.home_commune_insee
        mission.atlas_id = space.atlas_id if space is not None else None
        mission.departure_date = data.departure_date
        mission.planned_return_date = data.planned_return_date
        mission.snapshot = data.model_dump(mode="json")
        mission.updated_at = now
        if mission.status in ("ouvert", "a_orienter", "annule", "inconnu"):
            mission.status = "ouvert" if space is not None else "a_orienter"
