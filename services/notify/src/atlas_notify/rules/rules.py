"""Which events notify whom, with which template and on which channels."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.consumer import Delivery
from atlas_events.errors import PermanentError
from atlas_events.schemas import catalog, hr, missions, mobility, notify, requests, vault
from atlas_events.schemas.notify import Recipient
from atlas_notify.db import as_utc, utcnow
from atlas_notify.directory.models import SpaceName
from atlas_notify.directory.repository import DirectoryRepository
from atlas_notify.errors import MissingVariables, NotifyError, TemplateNotFound
from atlas_notify.notifications.service import NotifyPolicy, create_notification

log = structlog.get_logger(__name__)

CASE_LABELS = {"logement": "logement", "scolarite": "scolarité", "demenagement": "déménagement"}
CHANGE_LABELS = {
    "agent": "situation de l'agent",
    "origin": "affectation d'origine",
    "destination": "destination",
    "report_date": "date de prise de poste",
    "household": "composition du foyer",
    "needs": "besoins",
}
STATUS_LABELS = {
    "submitted": "enregistrée",
    "in_progress": "en cours de traitement",
    "waiting_agent": "en attente de votre réponse",
    "resolved": "traitée",
    "closed": "close",
    "transferred": "transférée",
    "cancelled": "annulée",
    "rejected": "refusée",
}

AGENT_CHANNELS = ("in_app", "email", "sms")
STAFF_CHANNELS = ("in_app", "email")


@dataclass(frozen=True)
class Send:
    """One notification a rule asks for."""

    recipient: Recipient
    template: str
    params: dict[str, str]
    channels: Sequence[str]
    reference: str | None = None


Rule = Callable[[AsyncSession, Delivery], Awaitable[list[Send]]]


def fr_date(value: date | datetime) -> str:
    return value.strftime("%d/%m/%Y %H:%M" if isinstance(value, datetime) else "%d/%m/%Y")


def agent(agent_id: str) -> Recipient:
    return Recipient(kind="agent", id=agent_id)


def space(atlas_id: str) -> Recipient:
    return Recipient(kind="space_staff", id=atlas_id)


async def space_label(session: AsyncSession, atlas_id: str | None) -> str:
    if atlas_id is None:
        return "la cellule mobilité nationale"
    row = await session.get(SpaceName, atlas_id)
    return row.name if row else f"ATLAS {atlas_id}"


def cases_label(cases: Sequence[mobility.CaseRef]) -> str:
    return ", ".join(CASE_LABELS.get(c.kind, c.kind) for c in cases) or "aucune pour l'instant"


async def _remember_contact(session: AsyncSession, event_id: str, data: object) -> None:
    """Mobility events may carry the agent's HR contact details (extra fields): keep them."""
    extra: dict[str, Any] = getattr(data, "model_extra", None) or {}
    found = extra.get("agent")
    person: dict[str, Any] = found if isinstance(found, dict) else {}
    email = extra.get("agent_email") or person.get("email")
    phone = extra.get("agent_phone") or person.get("phone")
    agent_id = getattr(data, "agent_id", None)
    if agent_id and (email or phone):
        await DirectoryRepository(session).upsert_contact(
            agent_id, source=f"event:{event_id}", email=email, phone=phone
        )


async def dossier_opened(session: AsyncSession, d: Delivery) -> list[Send]:
    data = d.data
    assert isinstance(data, mobility.DossierOpened)
    await _remember_contact(session, d.event.id, data)
    cases = cases_label(data.cases)
    sends = [
        Send(
            agent(data.agent_id),
            "mobility.dossier_opened",
            {
                "destination": await space_label(session, data.destination_atlas_id),
                "report_date": fr_date(data.report_date),
                "mutation_id": data.mutation_id,
                "cases": cases,
            },
            AGENT_CHANNELS,
            data.mutation_id,
        )
    ]
    if data.destination_atlas_id:
        sends.append(
            Send(
                space(data.destination_atlas_id),
                "mobility.dossier_opened_staff",
                {
                    "agent_id": data.agent_id,
                    "mutation_id": data.mutation_id,
                    "report_date": fr_date(data.report_date),
                    "cases": cases,
                },
                STAFF_CHANNELS,
                data.mutation_id,
            )
        )
    return sends


async def dossier_amended(session: AsyncSession, d: Delivery) -> list[Send]:
    data = d.data
    assert isinstance(data, mobility.DossierAmended)
    await _remember_contact(session, d.event.id, data)
    changes = ", ".join(CHANGE_LABELS.get(c, c) for c in data.changes) or "mise à jour"
    sends = [
        Send(
            agent(data.agent_id),
            "mobility.dossier_amended",
            {
                "mutation_id": data.mutation_id,
                "report_date": fr_date(data.report_date),
                "changes": changes,
                "destination": await space_label(session, data.destination_atlas_id),
            },
            AGENT_CHANNELS,
            data.mutation_id,
        )
    ]
    if data.destination_atlas_id:
        sends.append(
            Send(
                space(data.destination_atlas_id),
                "mobility.dossier_amended_staff",
                {
                    "agent_id": data.agent_id,
                    "mutation_id": data.mutation_id,
                    "changes": changes,
                    "report_date": fr_date(data.report_date),
                },
                STAFF_CHANNELS,
                data.mutation_id,
            )
        )
    return sends


async def dossier_cancelled(session: AsyncSession, d: Delivery) -> list[Send]:
    data = d.data
    assert isinstance(data, mobility.DossierCancelled)
    params = {"mutation_id": data.mutation_id, "reason": data.reason}
    sends = [
        Send(agent(data.agent_id), "mobility.dossier_cancelled", params, AGENT_CHANNELS,
             data.mutation_id)
    ]  # fmt: skip
    if data.destination_atlas_id:
        sends.append(
            Send(
                space(data.destination_atlas_id),
                "mobility.dossier_cancelled_staff",
                {**params, "agent_id": data.agent_id},
                STAFF_CHANNELS,
                data.mutation_id,
            )
        )
    return sends


async def milestone_due(session: AsyncSession, d: Delivery) -> list[Send]:
    data = d.data
    assert isinstance(data, mobility.MilestoneDue)
    params = {
        "milestone": data.milestone.replace("_", " "),
        "due_date": fr_date(data.due_date),
        "case": CASE_LABELS.get(data.case_kind, data.case_kind),
    }
    # The overdue reminder says so: the same words twice would read as a duplicate.
    template = (
        "mobility.milestone_overdue" if data.reminder == "overdue" else "mobility.milestone_due"
    )
    return [
        Send(agent(data.agent_id), template, params, ("in_app", "email"), data.mutation_id),
        Send(
            space(data.atlas_id),
            f"{template}_staff",
            {**params, "agent_id": data.agent_id, "mutation_id": data.mutation_id},
            STAFF_CHANNELS,
            data.mutation_id,
        ),
    ]  # fmt: skip


async def request_status_changed(session: AsyncSession, d: Delivery) -> list[Send]:
    data = d.data
    assert isinstance(data, requests.RequestStatusChanged)
    return [
        Send(
            agent(data.agent_id),
            "requests.status_changed",
            {"request_id": data.request_id, "status": STATUS_LABELS.get(data.status, data.status)},
            ("in_app", "email"),
            data.request_id,
        )
    ]


async def request_sla_breached(session: AsyncSession, d: Delivery) -> list[Send]:
    data = d.data
    assert isinstance(data, requests.RequestSlaBreached)
    return [
        Send(
            space(data.atlas_id),
            "requests.sla_breached",
            {
                "request_id": data.request_id,
                "sla_due_at": fr_date(data.sla_due_at),
                "assignee": f"attribuée à {data.assignee}" if data.assignee else "non attribuée",
            },
            STAFF_CHANNELS,
            data.request_id,
        )
    ]


async def grant_created(session: AsyncSession, d: Delivery) -> list[Send]:
    data = d.data
    assert isinstance(data, vault.GrantCreated)
    expires = fr_date(data.expires_at) if data.expires_at else "révocation"
    if data.grantee_kind == "space_staff":
        grantee_label = f"l'équipe {await space_label(session, data.grantee)}"
        grantee = space(data.grantee)
    else:
        grantee_label = f"l'agent ATLAS {data.grantee}"
        grantee = Recipient(kind="staff", id=data.grantee)
    return [
        Send(agent(data.owner_agent_id), "vault.grant_created",
             {"grantee": grantee_label, "expires": expires}, ("in_app",), data.document_id),
        Send(grantee, "vault.grant_received",
             {"owner_agent_id": data.owner_agent_id, "expires": expires}, STAFF_CHANNELS,
             data.document_id),
    ]  # fmt: skip


async def space_snapshot(session: AsyncSession, d: Delivery) -> list[Send]:
    data = d.data
    assert isinstance(data, catalog.SpaceSnapshot)
    row = await session.get(SpaceName, data.atlas_id)
    if row is None:
        session.add(SpaceName(atlas_id=data.atlas_id, name=data.name, version=data.version))
    elif data.version >= row.version:
        row.name, row.version = data.name, data.version
    return []


def crisis_mode_changed(stale_after: timedelta) -> Rule:
    async def rule(session: AsyncSession, d: Delivery) -> list[Send]:
        data = d.data
        assert isinstance(data, catalog.SpaceCrisisModeChanged)
        await space_snapshot(session, d)
        if utcnow() - as_utc(data.updated_at) > stale_after:
            # A compacted topic read from the start replays old switches: not news any more.
            log.info("crisis_switch_too_old", atlas_id=data.atlas_id, version=data.version)
            return []
        return [
            Send(
                space(data.atlas_id),
                "catalog.crisis_mode",
                {
                    "space": data.name,
                    "state": "activé" if data.crisis_mode else "désactivé",
                    "reason": data.crisis_reason or "non précisé",
                },
                ("in_app", "email", "sms"),
                f"{data.atlas_id}:v{data.version}",
            )
        ]

    return rule


async def hr_mutation(session: AsyncSession, d: Delivery) -> list[Send]:
    """HR mutations carry the agent's e-mail and phone: the contact directory keeps them."""
    data = d.data
    assert isinstance(data, hr.MutationAnnounced | hr.MutationAmended)
    person = data.agent
    await DirectoryRepository(session).upsert_contact(
        person.agent_id,
        source=f"event:{d.event.id}",
        email=person.email,
        phone=person.phone,
        given_name=person.given_name,
        family_name=person.family_name,
    )
    return []


MISSION_KINDS = {
    "opex": "OPEX",
    "mission_interieure": "mission intérieure",
    "embarquement": "embarquement",
    "other": "mission",
}


def _mission_params(
    data: missions.MissionOpened | missions.MissionReturnOpened | missions.MissionReturnOverdue,
) -> dict[str, str]:
    return {
        "mission_id": data.mission_id,
        "kind": MISSION_KINDS.get(data.kind, data.kind),
        "departure_date": fr_date(data.departure_date),
        "planned_return_date": fr_date(data.planned_return_date),
    }


async def mission_opened(session: AsyncSession, d: Delivery) -> list[Send]:
    """The agent leaving on mission (e-mail), and the home space's staff."""
    data = d.data
    assert isinstance(data, missions.MissionOpened)
    await _remember_contact(session, d.event.id, data)
    params = {**_mission_params(data), "space": await space_label(session, data.atlas_id)}
    sends = [
        Send(agent(data.agent_id), "mobility.mission_opened", params, AGENT_CHANNELS,
             data.mission_id)
    ]  # fmt: skip
    if data.atlas_id:
        sends.append(
            Send(
                space(data.atlas_id),
                "mobility.mission_opened_staff",
                {**params, "agent_id": data.agent_id},
                STAFF_CHANNELS,
                data.mission_id,
            )
        )
    return sends


async def mission_return_opened(session: AsyncSession, d: Delivery) -> list[Send]:
    """The agent back from mission: the return case is open at the home space."""
    data = d.data
    assert isinstance(data, missions.MissionReturnOpened)
    await _remember_contact(session, d.event.id, data)
    params = {
        **_mission_params(data),
        "space": await space_label(session, data.atlas_id),
        "return_date": fr_date(data.return_date),
    }
    return [
        Send(agent(data.agent_id), "mobility.mission_return_opened", params, AGENT_CHANNELS,
             f"{data.mission_id}:retour")
    ]  # fmt: skip


async def mission_return_overdue(session: AsyncSession, d: Delivery) -> list[Send]:
    """The home space's staff: a planned return passed with no returned event."""
    data = d.data
    assert isinstance(data, missions.MissionReturnOverdue)
    if not data.atlas_id:
        return []
    params = {**_mission_params(data), "agent_id": data.agent_id}
    return [
        Send(space(data.atlas_id), "mobility.mission_return_overdue_staff", params,
             STAFF_CHANNELS, data.mission_id)
    ]  # fmt: skip


def rules(stale_crisis: timedelta) -> dict[str, Rule]:
    return {
        mobility.DOSSIER_OPENED: dossier_opened,
        mobility.DOSSIER_AMENDED: dossier_amended,
        mobility.DOSSIER_CANCELLED: dossier_cancelled,
        mobility.MILESTONE_DUE: milestone_due,
        requests.REQUEST_STATUS_CHANGED: request_status_changed,
        requests.REQUEST_SLA_BREACHED: request_sla_breached,
        vault.GRANT_CREATED: grant_created,
        catalog.SPACE_SNAPSHOT: space_snapshot,
        catalog.SPACE_CRISIS_MODE_CHANGED: crisis_mode_changed(stale_crisis),
        hr.MUTATION_ANNOUNCED: hr_mutation,
        hr.MUTATION_AMENDED: hr_mutation,
        missions.MISSION_OPENED: mission_opened,
        missions.MISSION_RETURN_OPENED: mission_return_opened,
        missions.MISSION_RETURN_OVERDUE: mission_return_overdue,
    }


async def apply_rule(
    session: AsyncSession, policy: NotifyPolicy, rule: Rule, delivery: Delivery
) -> int:
    """Create what the rule asks for, once per (event, recipient, template); count the new ones."""
    created = 0
    for send in await rule(session, delivery):
        try:
            _, new = await create_notification(
                session,
                policy,
                source_key=f"event:{delivery.event.id}",
                source_type=delivery.event.type,
                recipient=send.recipient,
                template_code=send.template,
                params=send.params,
                channels=send.channels,
                reference=send.reference,
                requested_by=delivery.event.source,
            )
        except (TemplateNotFound, MissingVariables) as exc:
            raise PermanentError(f"{send.template}: {exc.message}") from exc
        created += int(new)
    return created


async def apply_command(session: AsyncSession, policy: NotifyPolicy, delivery: Delivery) -> None:
    """A SendNotification command: one notification per command id, recipient and template."""
    data = delivery.data
    assert isinstance(data, notify.SendNotification)
    try:
        await create_notification(
            session,
            policy,
            source_key=f"command:{data.notification_id}",
            source_type=delivery.event.type,
            recipient=Recipient(kind=data.recipient.kind, id=data.recipient.id),
            template_code=data.template,
            params=dict(data.params),
            channels=data.channels,
            reference=data.reference,
            requested_by=data.requested_by,
            send_at=data.send_at,
        )
    except NotifyError as exc:
        raise PermanentError(f"{type(exc).__name__}: {exc.message}") from exc
