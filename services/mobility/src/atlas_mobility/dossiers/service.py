"""The dossier decision: applies an HR mutation event to its dossier and to its handler cases.

One dossier per mutation_id. A revision not above the dossier's is recorded in the timeline and
changes nothing. Otherwise the snapshot replaces the previous one, compared field by field, and
each handler (logement, scolarité, déménagement) plans its case from it: the case is opened,
updated or closed in the same unit of work (`CaseHandler`), and the work item is published on the
handler's topic as a fact for integrators and the dashboard (mobility does not read it back).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

import structlog
from prometheus_client import Histogram
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_events.cloudevents import CloudEvent
from atlas_events.db import among, bulk_insert
from atlas_events.schemas import hr, mobility
from atlas_mobility.cases.handlers import SNAPSHOT_PARTS, Handler, Placement, case_id
from atlas_mobility.cases.service import CaseHandler
from atlas_mobility.context import MobilityContext
from atlas_mobility.db import table_of
from atlas_mobility.dossiers.models import Dossier
from atlas_mobility.dossiers.repository import DossierRepository
from atlas_mobility.events import EventSink
from atlas_mobility.policy import policy as pol
from atlas_mobility.spaces.models import SpaceReplica
from atlas_mobility.spaces.service import SpaceDirectory, known_communes, zone_of

log = structlog.get_logger(__name__)

ANTICIPATION_DAYS = Histogram(
    "atlas_mobility_anticipation_days",
    "Lead time from a mutation's announcement to its report date, by destination space",
    ["atlas_id"],
    buckets=(0, 30, 60, 90, 120, 150, 180, 240, 365, 730),
)

_OUTCOME_WORDS = {"duplicate": "doublon", "stale": "périmée"}
MutationEvent = hr.MutationAnnounced | hr.MutationAmended | hr.MutationCancelled


def changed_parts(old: hr.MutationSnapshot, new: hr.MutationSnapshot) -> list[str]:
    """The parts of the snapshot that differ between two revisions, in contract order."""
    before = old.model_dump(mode="json")
    after = new.model_dump(mode="json")
    return [part for part in SNAPSHOT_PARTS if before.get(part) != after.get(part)]


@dataclass
class NewDossier:
    """A dossier opened in this unit of work, inserted in bulk with the others at its end."""

    mutation_id: str
    revision: int
    agent_id: str
    announced_at: datetime
    updated_at: datetime
    hr_source: str | None = None
    destination_commune_insee: str | None = None
    destination_atlas_id: str | None = None
    destination_zone: str | None = None
    origin_commune_insee: str | None = None
    origin_atlas_id: str | None = None
    report_date: date | None = None
    snapshot: dict[str, Any] | None = None
    case_kinds: list[str] = field(default_factory=list)
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None


@dataclass
class Destination:
    """Where a snapshot sends the agent: the space (if any) and the zone used by the policy."""

    space: SpaceReplica | None
    zone: str

    @property
    def atlas_id(self) -> str | None:
        return None if self.space is None else self.space.atlas_id


class DossierDecision:
    """Applies HR events to dossiers within one unit of work (a stream batch or one event)."""

    def __init__(self, session: AsyncSession, context: MobilityContext, sink: EventSink) -> None:
        self.session = session
        self.context = context
        self.sink = sink
        self.repo = DossierRepository(session)
        self.spaces = SpaceDirectory(session, context.refdata_dir)
        self.handlers = context.handlers
        # The handlers' cases change in this same unit of work, on the same timeline.
        self.cases = CaseHandler(session, context, sink, timeline=self.repo)
        self._dossiers: dict[str, Dossier | None] = {}
        self._new: dict[str, NewDossier] = {}
        self._resolved: dict[str, SpaceReplica | None] = {}
        self._official = known_communes(context.refdata_dir)
        self._work: list[Callable[[], Awaitable[bool]]] = []

    async def flush(self) -> None:
        """Write what this unit of work queued: new dossiers (one statement), cases, timeline."""
        if self._new:
            rows = [dict(vars(d)) for d in self._new.values()]  # asdict would deep-copy
            for mutation_id in self._new:
                self._dossiers.pop(mutation_id, None)  # read back if the batch needs it again
            self._new = {}
            await bulk_insert(self.session, table_of(Dossier), rows)
        await self.cases.flush()  # also writes the shared timeline

    async def prefetch(self, events: Sequence[MutationEvent]) -> None:
        """Load and lock the batch's dossiers, then their cases, and resolve its communes.

        Dossiers are locked before cases, each in sorted order, as every unit of work that
        locks both does, so two batches cannot deadlock. A mutation without a dossier has no
        case either: its cases are known absent without a query.
        """
        ids = sorted({e.mutation_id for e in events})
        if ids:
            rows = await self.session.scalars(
                select(Dossier)
                .where(among(self.session, col(Dossier.mutation_id), ids))
                .order_by(col(Dossier.mutation_id))
                .with_for_update()
            )
            found = {d.mutation_id: d for d in rows}
            self._dossiers.update({m: found.get(m) for m in ids})
            kinds = [h.kind for h in self.handlers]
            await self.cases.prefetch([case_id(m, k) for m in sorted(found) for k in kinds])
            self.cases.known_absent([case_id(m, k) for m in ids if m not in found for k in kinds])
        communes: set[str] = set()
        for e in events:
            if isinstance(e, hr.MutationSnapshot):
                communes.add(e.destination.commune_insee)
                if e.origin is not None:
                    communes.add(e.origin.commune_insee)
        self._resolved.update(await self.spaces.resolve_many(communes - set(self._resolved)))

    async def _dossier(self, mutation_id: str) -> Dossier | None:
        if mutation_id in self._new:
            # A later revision in the same batch: write the new dossier and amend it as usual.
            await self.flush()
        if mutation_id not in self._dossiers:
            self._dossiers[mutation_id] = await self.repo.get(mutation_id, for_update=True)
        return self._dossiers[mutation_id]

    async def _resolve(self, commune: str) -> SpaceReplica | None:
        if commune not in self._resolved:
            self._resolved[commune] = await self.spaces.resolve(commune)
        return self._resolved[commune]

    async def apply(self, event: CloudEvent, data: MutationEvent) -> str:
        """Apply one HR event; returns the timeline outcome (applied, duplicate or stale)."""
        dossier = await self._dossier(data.mutation_id)
        if dossier is not None and data.revision <= dossier.revision:
            outcome = "duplicate" if data.revision == dossier.revision else "stale"
            self.repo.record(
                data.mutation_id,
                event_type=event.type,
                event_id=event.id,
                revision=data.revision,
                outcome=outcome,
                summary=(
                    f"révision {data.revision} ignorée ({_OUTCOME_WORDS[outcome]}, "
                    f"révision courante {dossier.revision})"
                ),
                occurred_at=event.time,
            )
            return outcome
        if isinstance(data, hr.MutationCancelled):
            await self._cancel(event, data, dossier)
        elif dossier is None or dossier.snapshot is None:
            await self._open(event, data, dossier)
        else:
            await self._amend(event, data, dossier)
        # The handlers' work, once the decision's own timeline entry is written.
        work, self._work = self._work, []
        for step in work:
            await step()
        return "applied"

    # ---- the three kinds of change --------------------------------------------------------------

    async def _open(
        self, event: CloudEvent, data: hr.MutationSnapshot, tombstone: Dossier | None
    ) -> None:
        now = self.context.now()
        destination = await self._destination(data)
        origin_space = await self._resolve(data.origin.commune_insee) if data.origin else None
        items = self._work_items(data, destination)
        dossier: Dossier | NewDossier
        if tombstone is not None:
            # A cancellation was seen first and a newer revision now announces it again.
            dossier = tombstone
            dossier.cancelled_at = None
            dossier.cancel_reason = None
        else:
            dossier = NewDossier(
                mutation_id=data.mutation_id,
                revision=data.revision,
                agent_id=data.agent.agent_id,
                announced_at=_announced_at(event, now),
                updated_at=now,
            )
            self._new[data.mutation_id] = dossier
        self._fill(dossier, event, data, destination, origin_space, items, now)
        for handler in self.handlers:
            item = items.get(handler.kind)
            if item is not None:
                self._apply_item(handler, handler.opened, item)
        anticipation = (data.report_date - dossier.announced_at.date()).days
        ANTICIPATION_DAYS.labels(destination.atlas_id or "a_orienter").observe(anticipation)
        status = "ouvert" if destination.space is not None else "a_orienter"
        self.sink.emit(
            mobility.DOSSIER_OPENED,
            mobility.DossierOpened(
                mutation_id=data.mutation_id,
                revision=data.revision,
                agent_id=data.agent.agent_id,
                status=status,
                destination_atlas_id=destination.atlas_id,
                destination_commune_insee=data.destination.commune_insee,
                report_date=data.report_date,
                cases=self._refs(items),
                opened_at=now,
                origin_commune_insee=data.origin.commune_insee if data.origin else None,
                anticipation_days=anticipation,
            ),
            key=data.mutation_id,
            subject=data.mutation_id,
        )
        if data.origin is not None:
            self._departure(data, origin_space, now)
        where = (
            f"à l'espace {destination.space.name}"
            if destination.space is not None
            else f"à orienter ({self._unplaced(data.destination.commune_insee)})"
        )
        self.repo.record(
            data.mutation_id,
            event_type=event.type,
            event_id=event.id,
            revision=data.revision,
            outcome="applied",
            summary=f"mutation annoncée : dossier ouvert {where} ; dossiers {_kinds(items)}",
            changes=list(SNAPSHOT_PARTS),
            occurred_at=event.time,
        )

    async def _amend(self, event: CloudEvent, data: hr.MutationSnapshot, dossier: Dossier) -> None:
        now = self.context.now()
        assert dossier.snapshot is not None
        previous = hr.MutationSnapshot.model_validate(dossier.snapshot)
        was_cancelled = dossier.cancelled_at is not None
        changes = changed_parts(previous, data)
        destination = await self._destination(data)
        origin_space = await self._resolve(data.origin.commune_insee) if data.origin else None
        moved = destination.atlas_id != dossier.destination_atlas_id
        items = self._work_items(data, destination)
        before = set() if was_cancelled else set(dossier.case_kinds)
        for handler in self.handlers:
            kind = handler.kind
            item = items.get(kind)
            if item is not None and kind not in before:
                self._apply_item(handler, handler.opened, item)
            elif item is not None and (moved or handler.relevant & set(changes)):
                self._apply_item(handler, handler.updated, item)
            elif item is None and kind in before:
                outcome = "transferred" if destination.space is None else "cancelled"
                reason = (
                    "Destination couverte par aucun espace : dossier à orienter"
                    if destination.space is None
                    else "Besoin retiré par la mutation modifiée"
                )
                self._close_case(handler, dossier, data.revision, outcome, reason, now)
        dossier.revision = data.revision
        dossier.cancelled_at = None
        dossier.cancel_reason = None
        self._fill(dossier, event, data, destination, origin_space, items, now)
        status = "ouvert" if destination.space is not None else "a_orienter"
        self.sink.emit(
            mobility.DOSSIER_AMENDED,
            mobility.DossierAmended(
                mutation_id=data.mutation_id,
                revision=data.revision,
                agent_id=data.agent.agent_id,
                status=status,
                destination_atlas_id=destination.atlas_id,
                destination_commune_insee=data.destination.commune_insee,
                report_date=data.report_date,
                changes=changes,
                cases=self._refs(items),
                amended_at=now,
            ),
            key=data.mutation_id,
            subject=data.mutation_id,
        )
        if data.origin is not None and "origin" in changes:
            self._departure(data, origin_space, now)
        summary = "mutation modifiée : " + (", ".join(changes) if changes else "aucun changement")
        if moved:
            summary += f" ; destination {destination.atlas_id or 'à orienter'}"
        if was_cancelled:
            summary += " ; dossier rouvert"
        self.repo.record(
            data.mutation_id,
            event_type=event.type,
            event_id=event.id,
            revision=data.revision,
            outcome="applied",
            summary=summary,
            changes=changes,
            occurred_at=event.time,
        )

    async def _cancel(
        self, event: CloudEvent, data: hr.MutationCancelled, dossier: Dossier | None
    ) -> None:
        now = self.context.now()
        if dossier is None:
            # Nothing announced yet: keep the cancellation so an older announcement stays ignored.
            dossier = Dossier(
                mutation_id=data.mutation_id,
                revision=data.revision,
                agent_id=data.agent.agent_id,
                announced_at=_announced_at(event, now),
                updated_at=now,
            )
            self.session.add(dossier)
            self._dossiers[data.mutation_id] = dossier
        elif dossier.cancelled_at is None:
            for handler in self.handlers:
                if handler.kind in dossier.case_kinds:
                    self._close_case(handler, dossier, data.revision, "cancelled", data.reason, now)
        dossier.revision = data.revision
        dossier.cancelled_at = now
        dossier.cancel_reason = data.reason
        dossier.updated_at = now
        self.sink.emit(
            mobility.DOSSIER_CANCELLED,
            mobility.DossierCancelled(
                mutation_id=data.mutation_id,
                revision=data.revision,
                agent_id=data.agent.agent_id,
                destination_atlas_id=dossier.destination_atlas_id,
                reason=data.reason,
                cancelled_at=now,
            ),
            key=data.mutation_id,
            subject=data.mutation_id,
        )
        self.repo.record(
            data.mutation_id,
            event_type=event.type,
            event_id=event.id,
            revision=data.revision,
            outcome="applied",
            summary=f"mutation annulée : {data.reason}",
            occurred_at=event.time,
        )

    # ---- helpers --------------------------------------------------------------------------------

    async def _destination(self, data: hr.MutationSnapshot) -> Destination:
        space = await self._resolve(data.destination.commune_insee)
        zone = (space.zone if space is not None else None) or zone_of(
            data.destination.commune_insee
        )
        return Destination(space, zone)

    def _fill(
        self,
        dossier: Dossier | NewDossier,
        event: CloudEvent,
        data: hr.MutationSnapshot,
        destination: Destination,
        origin_space: SpaceReplica | None,
        items: dict[str, mobility.HandlerCase],
        now: datetime,
    ) -> None:
        dossier.revision = data.revision
        dossier.agent_id = data.agent.agent_id
        dossier.hr_source = event.source[:300]
        dossier.destination_commune_insee = data.destination.commune_insee
        dossier.destination_atlas_id = destination.atlas_id
        dossier.destination_zone = destination.zone
        dossier.origin_commune_insee = data.origin.commune_insee if data.origin else None
        dossier.origin_atlas_id = origin_space.atlas_id if origin_space is not None else None
        dossier.report_date = data.report_date
        # Announced and amended events are snapshots (same fields, unknown ones kept).
        dossier.snapshot = data.model_dump(mode="json")
        dossier.case_kinds = list(items)
        dossier.updated_at = now

    def _work_items(
        self, data: hr.MutationSnapshot, destination: Destination
    ) -> dict[str, mobility.HandlerCase]:
        """What each handler plans for the snapshot at its destination (none while a_orienter)."""
        if destination.space is None:
            return {}
        placement = Placement(
            destination.space,
            destination.zone,
            pol.variant_for(destination.zone, data.destination.commune_insee),
        )
        items: dict[str, mobility.HandlerCase] = {}
        for handler in self.handlers:
            item = handler.work_item(data, placement)
            if item is not None:
                items[handler.kind] = item
        return items

    def _apply_item(self, handler: Handler, event_type: str, item: mobility.HandlerCase) -> None:
        """Publish the work item as a fact; the handler's case opens or changes after the entry."""
        self.sink.emit(event_type, item, key=item.mutation_id, subject=item.case_id)
        self._work.append(partial(self.cases.apply_item, handler.kind, item))

    def _close_case(
        self,
        handler: Handler,
        dossier: Dossier,
        revision: int,
        outcome: str,
        reason: str,
        now: datetime,
    ) -> None:
        closed = mobility.HandlerCaseClosed(
            case_id=case_id(dossier.mutation_id, handler.kind),
            mutation_id=dossier.mutation_id,
            agent_id=dossier.agent_id,
            atlas_id=dossier.destination_atlas_id or "a_orienter",
            outcome=outcome,
            reason=reason[:2000],
            closed_at=now,
            revision=revision,
        )
        self.sink.emit(handler.closed, closed, key=dossier.mutation_id, subject=closed.case_id)
        self._work.append(partial(self.cases.apply_closed, handler.kind, closed))

    def _unplaced(self, commune: str) -> str:
        """Why no space takes a commune: unknown to the official list, or covered by none."""
        if self._official is not None and commune not in self._official:
            return f"commune {commune} inconnue du référentiel des communes"
        return f"commune {commune} couverte par aucun espace"

    def _refs(self, items: dict[str, mobility.HandlerCase]) -> list[mobility.CaseRef]:
        return [
            mobility.CaseRef(case_id=item.case_id, kind=kind, atlas_id=item.atlas_id)
            for kind, item in items.items()
        ]

    def _departure(
        self, data: hr.MutationSnapshot, origin_space: SpaceReplica | None, now: datetime
    ) -> None:
        assert data.origin is not None
        self.sink.emit(
            mobility.DEPARTURE_ANNOUNCED,
            mobility.DepartureAnnounced(
                mutation_id=data.mutation_id,
                revision=data.revision,
                agent_id=data.agent.agent_id,
                origin_atlas_id=origin_space.atlas_id if origin_space is not None else None,
                origin_commune_insee=data.origin.commune_insee,
                destination_commune_insee=data.destination.commune_insee,
                report_date=data.report_date,
                announced_at=now,
            ),
            key=data.mutation_id,
            subject=data.mutation_id,
        )


def _announced_at(event: CloudEvent, now: datetime) -> datetime:
    """When HR announced it (the event's time), else when it reached us."""
    return event.time if event.time is not None and event.time <= now else now


def _kinds(items: dict[str, mobility.HandlerCase]) -> str:
    return ", ".join(items) if items else "aucun"
