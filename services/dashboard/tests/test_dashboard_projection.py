"""The projection's arithmetic: arrivals and case states, backlog and SLA, windows, crisis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dashboard_factories import (
    NOW,
    case_closed,
    delivery,
    dossier,
    event,
    report_date,
    space,
    status_changed,
    submitted,
)
from pydantic import BaseModel

from atlas_dashboard.projection import Projection
from atlas_events.registry import REGISTRY
from atlas_events.schemas import catalog, mobility, notify, requests


def _fold(projection: Projection, ce_type: str, data: BaseModel) -> None:
    topic, _ = event(ce_type, data)
    assert projection.apply(topic, data)


def test_arrivals_by_month_with_case_states_and_cancellations() -> None:
    p = Projection()
    _fold(p, catalog.SPACE_SNAPSHOT, space("toulon", "ATLAS de Toulon"))
    _fold(p, mobility.DOSSIER_OPENED, dossier("M-1", "toulon", 1))
    _fold(p, mobility.DOSSIER_OPENED, dossier("M-2", "toulon", 3))
    _fold(p, mobility.DOSSIER_OPENED, dossier("M-3", "toulon", 7))  # beyond six months
    _fold(p, mobility.DOSSIER_OPENED, dossier("M-4", "brest", 0))
    cancelled = mobility.DossierCancelled(
        mutation_id="M-4", revision=2, agent_id="2019123456", reason="Annulée", cancelled_at=NOW
    )
    _fold(p, mobility.DOSSIER_CANCELLED, cancelled)
    _fold(p, mobility.LOGEMENT_CASE_CLOSED, case_closed("M-1", "logement", "toulon"))
    _fold(
        p,
        requests.REQUEST_STATUS_CHANGED,
        status_changed("r-1", "toulon", "soumise", "en_instruction", case_id="M-2:scolarite"),
    )

    rows = p.arrivals(NOW.date(), 6)
    assert [r.atlas_id for r in rows] == ["toulon"]
    toulon = rows[0]
    assert toulon.name == "ATLAS de Toulon"
    assert [m.arrivals for m in toulon.months] == [0, 1, 0, 1, 0, 0]
    assert toulon.total == 2
    assert toulon.cases["logement"] == {"clos": 1, "ouvert": 1}
    assert toulon.cases["scolarite"] == {"ouvert": 1, "en_cours": 1}
    assert toulon.cases["demenagement"] == {"ouvert": 2}
    assert p.arrivals(NOW.date(), 6, atlas_id="brest") == []


def test_backlog_and_sla_compliance_per_space() -> None:
    p = Projection()
    _fold(p, requests.REQUEST_SUBMITTED, submitted("a", "toulon", due_in=timedelta(days=1)))
    _fold(p, requests.REQUEST_SUBMITTED, submitted("b", "toulon", due_in=timedelta(days=-1)))
    _fold(p, requests.REQUEST_SUBMITTED, submitted("c", "toulon", due_in=timedelta(days=2)))
    _fold(p, requests.REQUEST_STATUS_CHANGED, status_changed("c", "toulon", "soumise", "terminee"))
    _fold(p, requests.REQUEST_SUBMITTED, submitted("d", "toulon", due_in=None))
    _fold(
        p,
        requests.REQUEST_STATUS_CHANGED,
        status_changed("d", "toulon", "soumise", "en_instruction"),
    )

    [queue] = p.request_queues(NOW)
    assert (queue.backlog, queue.in_progress, queue.overdue) == (3, 1, 1)
    assert (queue.sla_met, queue.sla_missed) == (1, 1)  # c closed in time; b open past due
    assert queue.sla_compliance == 0.5


def test_notifications_count_only_the_recent_window() -> None:
    p = Projection(window=timedelta(minutes=30))
    _fold(p, notify.DELIVERY_STATUS_CHANGED, delivery("email", "delivered", minutes_ago=90))
    _fold(p, notify.DELIVERY_STATUS_CHANGED, delivery("email", "sending", minutes_ago=5))
    _fold(p, notify.DELIVERY_STATUS_CHANGED, delivery("email", "delivered", minutes_ago=4))
    _fold(p, notify.DELIVERY_STATUS_CHANGED, delivery("sms", "permanent_failure", minutes_ago=3))

    health = {c.channel: c for c in p.notification_health(NOW).channels}
    assert (health["email"].sent, health["email"].delivered, health["email"].failed) == (1, 1, 0)
    assert health["sms"].failed == 1
    assert health["sms"].failure_rate == 1.0
    assert health["in_app"].statuses == {}


def test_crisis_national_and_per_space_last_snapshot_wins() -> None:
    p = Projection()
    _fold(p, catalog.SPACE_SNAPSHOT, space("toulon", "ATLAS de Toulon"))
    crisis = space("brest", "ATLAS de Brest", crisis=True, crisis_scope="space", changed_by="ops-1")
    _fold(p, catalog.SPACE_CRISIS_MODE_CHANGED, crisis)
    assert p.crisis().national is False
    assert [s.atlas_id for s in p.crisis().spaces] == ["brest"]

    national = space(
        "toulon", "ATLAS de Toulon", crisis=True, crisis_scope="national", changed_by="ops-1",
        crisis_reason="Confinement",
    )  # fmt: skip
    _fold(p, catalog.SPACE_CRISIS_MODE_CHANGED, national)
    assert p.crisis().national is True
    assert p.crisis().national_reason == "Confinement"
    _fold(p, catalog.SPACE_SNAPSHOT, space("brest", "ATLAS de Brest"))
    assert [s.atlas_id for s in p.crisis().spaces] == ["toulon"]


def _mission(
    ce_type: str, mission_id: str, atlas_id: str | None, leave: int, back: int, **extra: Any
) -> BaseModel:
    model = REGISTRY.event_type(ce_type).data
    return model.model_validate(
        {
            "mission_id": mission_id,
            "revision": extra.pop("revision", 1),
            "agent_id": "2019123456",
            "kind": "opex",
            "status": extra.pop("status", "ouvert"),
            "atlas_id": atlas_id,
            "home_commune_insee": "83137",
            "departure_date": report_date(leave),
            "planned_return_date": report_date(back),
            **extra,
        }
    )


def test_mission_departures_and_returns_per_space_for_three_months() -> None:
    from atlas_events.schemas import missions as ms

    p = Projection()
    _fold(p, catalog.SPACE_SNAPSHOT, space("toulon", "ATLAS de Toulon"))
    _fold(p, ms.MISSION_OPENED, _mission(ms.MISSION_OPENED, "O-1", "toulon", 0, 2, opened_at=NOW))
    _fold(p, ms.MISSION_OPENED, _mission(ms.MISSION_OPENED, "O-2", "toulon", 1, 5, opened_at=NOW))
    _fold(p, ms.MISSION_OPENED, _mission(ms.MISSION_OPENED, "O-3", "toulon", 4, 8, opened_at=NOW))
    _fold(p, ms.MISSION_OPENED, _mission(ms.MISSION_OPENED, "O-4", None, 1, 2, opened_at=NOW))
    cancelled = _mission(
        ms.MISSION_CANCELLED_FACT, "O-2", "toulon", 1, 5, revision=2, status="annule",
        reason="Annulée", cancelled_at=NOW,
    )  # fmt: skip
    _fold(p, ms.MISSION_CANCELLED_FACT, cancelled)
    back_early = _mission(
        ms.MISSION_RETURN_OPENED, "O-5", "toulon", -3, 4, status="en_retour",
        return_date=report_date(1), trigger="returned", opened_at=NOW,
    )  # fmt: skip
    _fold(p, ms.MISSION_RETURN_OPENED, back_early)
    rows = {r.atlas_id: r for r in p.mission_flows(NOW.date())}
    toulon = rows["toulon"]
    assert toulon.name == "ATLAS de Toulon"
    assert [m.month for m in toulon.months] == [report_date(i).strftime("%Y-%m") for i in range(3)]
    assert [(m.departures, m.returns) for m in toulon.months] == [(1, 0), (0, 1), (0, 1)]
    assert (toulon.departures, toulon.returns) == (1, 2)  # O-2 cancelled, O-3 beyond
    assert (rows[None].departures, rows[None].returns) == (1, 1)  # still to be oriented
    assert [r.atlas_id for r in p.mission_flows(NOW.date(), "toulon")] == ["toulon"]
