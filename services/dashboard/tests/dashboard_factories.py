"""Events of every kind the dashboard reads, built from the shared schemas, for its tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from atlas_dashboard.projection import month_start
from atlas_events.cloudevents import CloudEvent
from atlas_events.registry import REGISTRY
from atlas_events.schemas import catalog, mobility, notify, requests

NOW = datetime.now(UTC)


def event(ce_type: str, data: BaseModel) -> tuple[str, CloudEvent]:
    """The (unprefixed) topic and the CloudEvent carrying `data`."""
    topic = REGISTRY.topic_for_event(ce_type).name
    return topic, CloudEvent.create(ce_type, "urn:atlas:test", data)


def space(atlas_id: str, name: str, *, crisis: bool = False, **extra: Any) -> catalog.SpaceSnapshot:
    cls = catalog.SpaceCrisisModeChanged if "changed_by" in extra else catalog.SpaceSnapshot
    return cls(
        atlas_id=atlas_id,
        name=name,
        commune_insee="83137",
        region="Provence-Alpes-Côte d'Azur",
        overseas=False,
        communes_covered=["83137"],
        crisis_mode=crisis,
        version=1,
        updated_at=NOW,
        **extra,
    )


def report_date(months_ahead: int) -> date:
    """The 10th of the month `months_ahead` months from now."""
    return month_start(NOW.date(), months_ahead) + timedelta(days=9)


def dossier(mutation_id: str, atlas_id: str, months_ahead: int) -> mobility.DossierOpened:
    return mobility.DossierOpened(
        mutation_id=mutation_id,
        revision=1,
        agent_id="2019123456",
        status="ouvert",
        destination_atlas_id=atlas_id,
        destination_commune_insee="83137",
        report_date=report_date(months_ahead),
        cases=[
            mobility.CaseRef(case_id=f"{mutation_id}:{kind}", kind=kind, atlas_id=atlas_id)
            for kind in ("logement", "scolarite", "demenagement")
        ],
        opened_at=NOW,
    )


def case_closed(mutation_id: str, kind: str, atlas_id: str) -> mobility.HandlerCaseClosed:
    return mobility.HandlerCaseClosed(
        case_id=f"{mutation_id}:{kind}",
        mutation_id=mutation_id,
        agent_id="2019123456",
        atlas_id=atlas_id,
        outcome="completed",
        closed_at=NOW,
        revision=1,
    )


def submitted(
    request_id: str, atlas_id: str, *, due_in: timedelta | None, case_id: str | None = None
) -> requests.RequestSubmitted:
    return requests.RequestSubmitted(
        request_id=request_id,
        atlas_id=atlas_id,
        prestation_code="HAB-005",
        agent_id="2019123456",
        channel="anticipation",
        title="Recherche de logement",
        status="soumise",
        case_id=case_id,
        sla_due_at=None if due_in is None else NOW + due_in,
        submitted_at=NOW - timedelta(days=3),
    )


def status_changed(
    request_id: str, atlas_id: str, previous: str, status: str, *, case_id: str | None = None
) -> requests.RequestStatusChanged:
    return requests.RequestStatusChanged(
        request_id=request_id,
        atlas_id=atlas_id,
        agent_id="2019123456",
        previous_status=previous,
        status=status,
        case_id=case_id,
        changed_at=NOW - timedelta(minutes=1),
    )


def delivery(channel: str, status: str, *, minutes_ago: float = 1) -> notify.DeliveryStatusChanged:
    return notify.DeliveryStatusChanged(
        notification_id=f"n-{channel}-{status}-{minutes_ago}",
        recipient=notify.Recipient(kind="agent", id="2019123456"),
        channel=channel,
        status=status,
        changed_at=NOW - timedelta(minutes=minutes_ago),
    )
