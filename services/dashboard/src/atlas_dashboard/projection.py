"""The dashboard's state: the platform's topics folded event by event into in-memory figures.

Rebuilt from the beginning of the topics at every start (no consumer group, no commit), so it
never depends on what an earlier run saw. Windowed figures use the events' own times, so a
replay gives the same counts as the live run did.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel

from atlas_dashboard.overview import (
    CaseState,
    ChannelHealth,
    CrisisStatus,
    DlqByConsumer,
    MissionMonth,
    MonthCount,
    NotificationHealth,
    SpaceArrivals,
    SpaceCrisis,
    SpaceMissions,
    SpaceRequests,
)
from atlas_events.schemas import catalog, missions, mobility, notify, requests

MissionFact = (
    missions.MissionOpened
    | missions.MissionAmendedFact
    | missions.MissionCancelledFact
    | missions.MissionReturnOpened
    | missions.MissionReturnOverdue
)
_MISSION_FACTS = (
    missions.MissionOpened,
    missions.MissionAmendedFact,
    missions.MissionCancelledFact,
    missions.MissionReturnOpened,
    missions.MissionReturnOverdue,
)

CASE_KINDS = ("logement", "scolarite", "demenagement")
CLOSED_REQUEST = frozenset({"terminee", "refusee", "sans_suite", "transferee"})
IN_PROGRESS_REQUEST = frozenset({"en_instruction", "en_attente_usager"})
FAILED_DELIVERY = frozenset({"temporary_failure", "permanent_failure", "technical_failure"})
NOTIFICATION_CHANNELS = ("in_app", "email", "sms")
_CASE_OUTCOME: dict[str, CaseState] = {
    "completed": "clos",
    "cancelled": "annule",
    "transferred": "transfere",
}


@dataclass
class Space:
    name: str
    crisis_mode: bool = False
    crisis_scope: str | None = None
    crisis_reason: str | None = None
    changed_by: str | None = None
    updated_at: datetime | None = None


@dataclass
class Case:
    kind: str
    revision: int = 0
    closed: CaseState | None = None


@dataclass
class Dossier:
    revision: int
    destination: str | None
    report_date: date
    status: str
    cases: dict[str, str] = field(default_factory=dict)  # case_id → kind


@dataclass
class Request:
    atlas_id: str
    status: str
    sla_due_at: datetime | None
    closed_at: datetime | None = None
    breached: bool = False


def month_start(day: date, months_after: int = 0) -> date:
    """The first day of the month `months_after` months after `day`'s."""
    index = day.year * 12 + day.month - 1 + months_after
    return date(index // 12, index % 12 + 1, 1)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class MissionRow:
    """What the dashboard keeps of a mission: its space and its dates."""

    atlas_id: str | None
    revision: int
    status: str
    departure: date
    planned_return: date
    return_date: date | None = None


MISSION_MONTHS = 3


class Projection:
    """What the topics say now; `apply` each event in log order, read with the view methods."""

    def __init__(self, *, window: timedelta = timedelta(hours=1)) -> None:
        self.window = window
        self.reset()

    def reset(self) -> None:
        """Forget everything (the reader replays the topics from the beginning)."""
        self.spaces: dict[str, Space] = {}
        self.dossiers: dict[str, Dossier] = {}
        self.missions: dict[str, MissionRow] = {}
        self.cases: dict[str, Case] = {}
        self.request_status_by_case: dict[str, str] = {}
        self.requests: dict[str, Request] = {}
        self.deliveries: deque[tuple[datetime, str, str]] = deque()
        self.dlq: dict[tuple[str, str], int] = Counter()
        self.dlq_reasons: dict[tuple[str, str], str] = {}
        self.applied = 0
        self.skipped = 0

    # ---- folding events ------------------------------------------------------------------------

    def apply(self, topic: str, data: BaseModel) -> bool:
        """Fold one validated event of `topic` (unprefixed name); False if it is not used."""
        used = self._apply(topic, data)
        if used:
            self.applied += 1
        return used

    def _apply(self, topic: str, data: BaseModel) -> bool:
        if isinstance(data, catalog.SpaceSnapshot):
            self._space(data)
        elif isinstance(data, mobility.DossierOpened | mobility.DossierAmended):
            self._dossier(data)
        elif isinstance(data, mobility.DossierCancelled):
            dossier = self.dossiers.get(data.mutation_id)
            if dossier is not None and data.revision >= dossier.revision:
                dossier.status, dossier.revision = "annule", data.revision
        elif isinstance(data, mobility.DossierClosed):
            if (dossier := self.dossiers.get(data.mutation_id)) is not None:
                dossier.status = "clos"
        elif isinstance(data, _MISSION_FACTS):
            self._mission(data)
        elif isinstance(data, mobility.HandlerCase):
            self._case_item(topic, data)
        elif isinstance(data, mobility.HandlerCaseClosed):
            self._case_closed(topic, data)
        elif isinstance(data, requests.RequestSubmitted):
            self._request_submitted(data)
        elif isinstance(data, requests.RequestStatusChanged):
            self._request_status(data)
        elif isinstance(data, requests.RequestSlaBreached):
            if (request := self.requests.get(data.request_id)) is not None:
                request.breached = True
        elif isinstance(data, notify.DeliveryStatusChanged):
            self.deliveries.append((data.changed_at, data.channel, data.status))
        else:
            return False
        return True

    def apply_dead_letter(self, dlq_topic: str, consumer: str | None, reason: str | None) -> None:
        """Count a message of `<topic>.dlq` (unprefixed name) against the consumer that failed."""
        key = (dlq_topic, consumer or "?")
        self.dlq[key] += 1
        if reason:
            self.dlq_reasons[key] = reason

    def _space(self, data: catalog.SpaceSnapshot) -> None:
        # Last one wins: the topic has one partition, its order is the catalog's order.
        self.spaces[data.atlas_id] = Space(
            name=data.name,
            crisis_mode=data.crisis_mode,
            crisis_scope=data.crisis_scope if data.crisis_mode else None,
            crisis_reason=getattr(data, "crisis_reason", None),
            changed_by=getattr(data, "changed_by", None),
            updated_at=data.updated_at,
        )

    def _dossier(self, data: mobility.DossierOpened | mobility.DossierAmended) -> None:
        known = self.dossiers.get(data.mutation_id)
        if known is not None and data.revision < known.revision:
            return  # an older revision, re-read: the newer one stands
        cases: dict[str, str] = {ref.case_id: str(ref.kind) for ref in data.cases}
        if known is not None:
            cases = {**known.cases, **cases}  # closed cases leave the list, not the dossier
        self.dossiers[data.mutation_id] = Dossier(
            revision=data.revision,
            destination=data.destination_atlas_id,
            report_date=data.report_date,
            status=data.status,
            cases=cases,
        )

    def _case_item(self, topic: str, data: mobility.HandlerCase) -> None:
        kind = _kind_of(topic)
        case = self.cases.setdefault(data.case_id, Case(kind=kind))
        if data.revision >= case.revision:
            case.revision = data.revision
            case.closed = None  # opened again (e.g. after a transfer back)

    def _case_closed(self, topic: str, data: mobility.HandlerCaseClosed) -> None:
        case = self.cases.setdefault(data.case_id, Case(kind=_kind_of(topic)))
        if data.revision is None or data.revision >= case.revision:
            case.revision = data.revision or case.revision
            case.closed = _CASE_OUTCOME[data.outcome]

    def _request_submitted(self, data: requests.RequestSubmitted) -> None:
        self.requests[data.request_id] = Request(
            atlas_id=data.atlas_id, status=data.status, sla_due_at=data.sla_due_at
        )
        if data.case_id:
            self.request_status_by_case[data.case_id] = data.status

    def _request_status(self, data: requests.RequestStatusChanged) -> None:
        request = self.requests.get(data.request_id)
        if request is None:  # submitted before the topic's retention: no SLA known
            request = self.requests[data.request_id] = Request(
                atlas_id=data.atlas_id, status=data.status, sla_due_at=None
            )
        request.status = data.status
        request.closed_at = data.changed_at if data.status in CLOSED_REQUEST else None
        if data.case_id:
            self.request_status_by_case[data.case_id] = data.status

    # ---- views -----------------------------------------------------------------------------------

    def space_name(self, atlas_id: str | None) -> str:
        if atlas_id is None:
            return "À orienter"
        space = self.spaces.get(atlas_id)
        return space.name if space is not None else atlas_id

    def case_state(self, case_id: str) -> CaseState:
        """ouvert, en_cours (its request is being handled), or how it closed."""
        case = self.cases.get(case_id)
        if case is not None and case.closed is not None:
            return case.closed
        if self.request_status_by_case.get(case_id) in IN_PROGRESS_REQUEST:
            return "en_cours"
        return "ouvert"

    def _mission(self, data: MissionFact) -> None:
        known = self.missions.get(data.mission_id)
        if known is not None and data.revision < known.revision:
            return
        back = known.return_date if known is not None else None
        if isinstance(data, missions.MissionReturnOpened) and data.trigger == "returned":
            back = data.return_date
        self.missions[data.mission_id] = MissionRow(
            atlas_id=data.atlas_id,
            revision=data.revision,
            status=data.status,
            departure=data.departure_date,
            planned_return=data.planned_return_date,
            return_date=back,
        )

    def mission_flows(
        self, today: date, atlas_id: str | None = None, months: int = MISSION_MONTHS
    ) -> list[SpaceMissions]:
        """Departures and returns (actual, else planned) per space and month, cancelled left out."""
        first, end = self.horizon(today, months)
        labels = [month_start(today, i).strftime("%Y-%m") for i in range(months)]
        flows: dict[str | None, dict[str, Counter[str]]] = {}
        for row in self.missions.values():
            if row.status == "annule" or (atlas_id is not None and row.atlas_id != atlas_id):
                continue
            back = row.return_date or row.planned_return
            for what, day in (("departures", row.departure), ("returns", back)):
                if first <= day < end:
                    per = flows.setdefault(row.atlas_id, {"departures": Counter(),
                                                          "returns": Counter()})  # fmt: skip
                    per[what][day.strftime("%Y-%m")] += 1
        rows = [
            SpaceMissions(
                atlas_id=space,
                name=self.space_name(space),
                months=[
                    MissionMonth(month=m, departures=c["departures"][m], returns=c["returns"][m])
                    for m in labels
                ],
                departures=sum(c["departures"].values()),
                returns=sum(c["returns"].values()),
            )
            for space, c in flows.items()
        ]
        return sorted(rows, key=lambda r: (-(r.departures + r.returns), r.name))

    def horizon(self, today: date, months: int) -> tuple[date, date]:
        return month_start(today), month_start(today, months)

    def arrivals(
        self, today: date, months: int, atlas_id: str | None = None
    ) -> list[SpaceArrivals]:
        """Dossiers (not cancelled) by destination and report month, with their cases' states."""
        first, end = self.horizon(today, months)
        labels = [month_start(today, i).strftime("%Y-%m") for i in range(months)]
        counts: dict[str | None, Counter[str]] = {}
        cases: dict[str | None, dict[str, Counter[str]]] = {}
        for dossier in self.dossiers.values():
            if dossier.status == "annule" or not first <= dossier.report_date < end:
                continue
            if atlas_id is not None and dossier.destination != atlas_id:
                continue
            counts.setdefault(dossier.destination, Counter())[
                dossier.report_date.strftime("%Y-%m")
            ] += 1
            per_kind = cases.setdefault(dossier.destination, {k: Counter() for k in CASE_KINDS})
            for case_id, kind in dossier.cases.items():
                per_kind.setdefault(kind, Counter())[self.case_state(case_id)] += 1
        rows = [
            SpaceArrivals(
                atlas_id=space,
                name=self.space_name(space),
                months=[MonthCount(month=m, arrivals=by_month[m]) for m in labels],
                total=sum(by_month.values()),
                cases={kind: dict(states) for kind, states in cases[space].items()},
            )
            for space, by_month in counts.items()
        ]
        return sorted(rows, key=lambda r: (-r.total, r.name))

    def request_queues(self, now: datetime, atlas_id: str | None = None) -> list[SpaceRequests]:
        """Backlog and SLA compliance per space."""
        rows: dict[str, Counter[str]] = {}
        for request in self.requests.values():
            if atlas_id is not None and request.atlas_id != atlas_id:
                continue
            row = rows.setdefault(request.atlas_id, Counter())
            is_open = request.status not in CLOSED_REQUEST and request.status != "brouillon"
            due = request.sla_due_at
            if is_open:
                row["backlog"] += 1
                row["in_progress"] += request.status in IN_PROGRESS_REQUEST
            if request.status == "transferee" or (due is None and not request.breached):
                continue  # moved to another space, or no deadline: outside the SLA figures
            if is_open:
                late = request.breached or (due is not None and now > due)
                row["overdue"] += late
                row["sla_missed"] += late
            elif request.status != "brouillon":
                closed = request.closed_at or now
                late = request.breached or (due is not None and closed > due)
                row["sla_missed" if late else "sla_met"] += 1
        result = [
            SpaceRequests(
                atlas_id=space,
                name=self.space_name(space),
                backlog=row["backlog"],
                in_progress=row["in_progress"],
                overdue=row["overdue"],
                sla_met=row["sla_met"],
                sla_missed=row["sla_missed"],
                sla_compliance=_ratio(row["sla_met"], row["sla_met"] + row["sla_missed"]),
            )
            for space, row in rows.items()
        ]
        return sorted(result, key=lambda r: (-r.backlog, r.name))

    def notification_health(self, now: datetime) -> NotificationHealth:
        """Delivery status changes per channel whose time is within the window before `now`."""
        since = now - self.window
        # Events arrive roughly in time order: drop the old ones from the left, count the rest.
        while self.deliveries and self.deliveries[0][0] < since:
            self.deliveries.popleft()
        per_channel: dict[str, Counter[str]] = {c: Counter() for c in NOTIFICATION_CHANNELS}
        for at, channel, status in self.deliveries:
            if since <= at <= now + timedelta(minutes=5):
                per_channel.setdefault(channel, Counter())[status] += 1
        channels = []
        for channel, statuses in per_channel.items():
            delivered = statuses["delivered"]
            failed = sum(statuses[s] for s in FAILED_DELIVERY)
            channels.append(
                ChannelHealth(
                    channel=channel,
                    statuses=dict(statuses),
                    sent=statuses["sending"],
                    delivered=delivered,
                    failed=failed,
                    failure_rate=_ratio(failed, delivered + failed),
                )
            )
        return NotificationHealth(
            window_minutes=int(self.window.total_seconds() // 60), channels=channels
        )

    def crisis(self, atlas_id: str | None = None) -> CrisisStatus:
        """National crisis mode (any snapshot saying so) and the spaces in crisis mode."""
        national = [s for s in self.spaces.values() if s.crisis_scope == "national"]
        in_crisis = [
            SpaceCrisis(
                atlas_id=key,
                name=space.name,
                scope=space.crisis_scope,
                reason=space.crisis_reason,
                changed_by=space.changed_by,
                since=space.updated_at,
            )
            for key, space in self.spaces.items()
            if space.crisis_mode and (atlas_id is None or key == atlas_id)
        ]
        return CrisisStatus(
            national=bool(national),
            national_reason=next((s.crisis_reason for s in national if s.crisis_reason), None),
            spaces=sorted(in_crisis, key=lambda s: (s.scope != "space", s.name)),
            spaces_known=len(self.spaces),
        )

    def dead_letters(self) -> list[DlqByConsumer]:
        return [
            DlqByConsumer(
                topic=topic, consumer=consumer, messages=n, last_reason=self.dlq_reasons.get(key)
            )
            for key, n in sorted(self.dlq.items())
            for topic, consumer in [key]
        ]


def _kind_of(topic: str) -> str:
    """`mobility.handlers.<kind>.v1` → kind."""
    parts = topic.split(".")
    return parts[2] if len(parts) > 3 and parts[1] == "handlers" else "?"


def utcnow() -> datetime:
    return datetime.now(UTC)
