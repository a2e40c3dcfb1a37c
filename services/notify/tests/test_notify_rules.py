"""Events from the other services through the rules, on the real broker; the command topic."""

import json
from datetime import UTC, datetime
from typing import Any

from notify_factories import NotifyHarness, SmtpSink

from atlas_events.cloudevents import CloudEvent
from atlas_events.consumer import dlq_reason
from atlas_events.schemas import catalog, hr, mobility, requests, vault
from atlas_events.schemas import notify as notify_schema
from atlas_events.testing import read_topic, wait_until

AGENT = "2019123456"
NOW = datetime.now(UTC).isoformat()


def event(ce_type: str, data: dict[str, Any], source: str = "urn:atlas:mobility") -> CloudEvent:
    return CloudEvent.create(ce_type, source, data)


def announced() -> CloudEvent:
    return event(
        hr.MUTATION_ANNOUNCED,
        {
            "mutation_id": "TERRE-2027-004211",
            "revision": 1,
            "agent": {
                "agent_id": AGENT,
                "rank": "Sergent",
                "given_name": "Camille",
                "family_name": "Martin",
                "email": "camille.martin@example.fr",
                "phone": "+33612345678",
                "population": "militaire",
            },
            "destination": {"unit": "Base navale de Toulon", "commune_insee": "83137"},
            "report_date": "2027-08-30",
            "household": {"partner": True, "children": []},
        },
        source="urn:atlas:rh:sirh-terre",
    )


def dossier_opened() -> CloudEvent:
    return event(
        mobility.DOSSIER_OPENED,
        {
            "mutation_id": "TERRE-2027-004211",
            "revision": 1,
            "agent_id": AGENT,
            "status": "ouvert",
            "destination_atlas_id": "toulon",
            "destination_commune_insee": "83137",
            "report_date": "2027-08-30",
            "cases": [
                {"case_id": "TERRE-2027-004211:logement", "kind": "logement", "atlas_id": "toulon"}
            ],
            "opened_at": NOW,
        },
    )


async def notifications_of(n: NotifyHarness, recipient: str, kind: str = "agent") -> list[Any]:
    response = await n.client.get(
        "/v1/notifications", params={"recipient": recipient, "kind": kind}, headers=n.ops
    )
    assert response.status_code == 200, response.text
    result: list[Any] = response.json()
    return result


async def test_dossier_opened_notifies_agent_and_staff_once_despite_duplicates(
    notify: NotifyHarness, smtp_sink: SmtpSink
) -> None:
    await notify.produce("hr.mutations.v1", announced(), key=AGENT)

    async def contact_known() -> bool:
        response = await notify.client.get(f"/v1/contacts/{AGENT}", headers=notify.ops)
        return response.status_code == 200

    # Mobility opens the dossier from that same HR event, so the contact arrives first in life.
    await wait_until(contact_known, timeout=20)
    opened = dossier_opened()
    await notify.produce("mobility.dossiers.v1", opened, opened, key="TERRE-2027-004211")
    await notify.produce(
        "catalog.spaces.v1",
        event(
            catalog.SPACE_SNAPSHOT,
            {
                "atlas_id": "toulon", "name": "ATLAS de Toulon", "commune_insee": "83137",
                "region": "Provence-Alpes-Côte d'Azur", "overseas": False,
                "communes_covered": ["83137"], "crisis_mode": False, "version": 1,
                "updated_at": NOW,
            },
            source="urn:atlas:catalog",
        ),
        key="toulon",
    )  # fmt: skip

    (mine,) = await wait_until(lambda: notifications_of(notify, AGENT), timeout=20)
    assert mine["template"] == "mobility.dossier_opened"
    # No SMS provider is configured here: the SMS fails on our side after its retries.
    mine = await notify.wait_statuses(
        mine["id"], {"email": "delivered", "in_app": "delivered", "sms": "technical_failure"}
    )
    sms = next(d for d in mine["deliveries"] if d["channel"] == "sms")
    assert sms["address"] == "+33612345678"
    assert "no_sms_provider" in sms["detail"]
    (email,) = smtp_sink.messages_to("camille.martin@example.fr")
    assert "TERRE-2027-004211" in email.get_payload(decode=True).decode()

    (staff,) = await notifications_of(notify, "toulon", "space_staff")
    assert staff["template"] == "mobility.dossier_opened_staff"
    by_channel = sorted((d["channel"], d["target"], d["reason"]) for d in staff["deliveries"])
    assert by_channel[0][0] == "email"
    assert by_channel[0][2] == "digest_pending"
    assert {t for c, t, _ in by_channel if c == "email"} == {"manager-toulon-01", "staff-toulon-01"}
    # Two copies of the event, one notification each: the processed-event record and the
    # unique (event, recipient, template) constraint both stand in the way of a second one.
    assert len(await notify.deliveries()) == 3 + 3


async def test_the_other_rules_map_events_to_templates_and_recipients(
    notify: NotifyHarness,
) -> None:
    events = [
        ("mobility.dossiers.v1", event(mobility.MILESTONE_DUE, {
            "mutation_id": "TERRE-2027-004211", "case_id": "TERRE-2027-004211:logement",
            "case_kind": "logement", "atlas_id": "toulon", "agent_id": AGENT,
            "milestone": "visite_logement", "due_date": "2027-07-30", "emitted_at": NOW})),
        ("mobility.dossiers.v1", event(mobility.MILESTONE_DUE, {
            "mutation_id": "TERRE-2027-004211", "case_id": "TERRE-2027-004211:logement",
            "case_kind": "logement", "atlas_id": "toulon", "agent_id": AGENT,
            "milestone": "demande_logement", "due_date": "2027-03-02", "emitted_at": NOW,
            "reminder": "overdue", "urgent": True})),
        ("mobility.dossiers.v1", event(mobility.DOSSIER_AMENDED, {
            "mutation_id": "TERRE-2027-004211", "revision": 2, "agent_id": AGENT,
            "status": "ouvert", "destination_atlas_id": "toulon",
            "destination_commune_insee": "83137", "report_date": "2027-09-06",
            "changes": ["report_date"], "cases": [], "amended_at": NOW})),
        ("mobility.dossiers.v1", event(mobility.DOSSIER_CANCELLED, {
            "mutation_id": "TERRE-2027-004211", "revision": 3, "agent_id": AGENT,
            "destination_atlas_id": "toulon", "reason": "Affectation annulée",
            "cancelled_at": NOW})),
        ("requests.requests.v1", event(requests.REQUEST_STATUS_CHANGED, {
            "request_id": "req-1", "atlas_id": "toulon", "agent_id": AGENT,
            "previous_status": "submitted", "status": "in_progress", "changed_at": NOW},
            source="urn:atlas:requests")),
        ("requests.requests.v1", event(requests.REQUEST_SLA_BREACHED, {
            "request_id": "req-1", "atlas_id": "toulon", "sla_due_at": NOW, "breached_at": NOW},
            source="urn:atlas:requests")),
        ("vault.documents.v1", event(vault.GRANT_CREATED, {
            "grant_id": "g-1", "document_id": "doc-1", "owner_agent_id": AGENT,
            "grantee_kind": "space_staff", "grantee": "toulon", "permission": "read",
            "created_at": NOW}, source="urn:atlas:vault")),
        ("catalog.spaces.v1", event(catalog.SPACE_CRISIS_MODE_CHANGED, {
            "atlas_id": "toulon", "name": "ATLAS de Toulon", "commune_insee": "83137",
            "region": "PACA", "overseas": False, "communes_covered": ["83137"],
            "crisis_mode": True, "version": 5, "updated_at": NOW,
            "crisis_reason": "Confinement national", "changed_by": "ops-1"},
            source="urn:atlas:catalog")),
    ]  # fmt: skip
    for topic, e in events:
        await notify.produce(topic, e)

    expected_agent = {
        "mobility.milestone_due",
        "mobility.milestone_overdue",
        "mobility.dossier_amended",
        "mobility.dossier_cancelled",
        "requests.status_changed",
        "vault.grant_created",
    }
    expected_staff = {
        "mobility.milestone_due_staff",
        "mobility.milestone_overdue_staff",
        "mobility.dossier_amended_staff",
        "mobility.dossier_cancelled_staff",
        "requests.sla_breached",
        "vault.grant_received",
        "catalog.crisis_mode",
    }

    async def all_there() -> bool:
        agent = {n["template"] for n in await notifications_of(notify, AGENT)}
        staff = {n["template"] for n in await notifications_of(notify, "toulon", "space_staff")}
        return agent == expected_agent and staff == expected_staff

    await wait_until(all_there, timeout=20)
    staff = await notifications_of(notify, "toulon", "space_staff")
    crisis = next(n for n in staff if n["template"] == "catalog.crisis_mode")
    assert crisis["category"] == "critical"
    # Critical: e-mails go now (no digest), SMS to the staff member with a phone.
    emails = [d for d in crisis["deliveries"] if d["channel"] == "email"]
    assert {d["reason"] for d in emails} != {"digest_pending"}
    assert any(
        d["channel"] == "sms" and d["target"] == "staff-toulon-01" for d in crisis["deliveries"]
    )


async def test_send_command_creates_one_notification_and_bad_commands_go_to_the_dlq(
    notify: NotifyHarness,
) -> None:
    def command(template: str, params: dict[str, str], nid: str = "cmd-1") -> CloudEvent:
        return event(
            notify_schema.SEND_NOTIFICATION,
            {
                "notification_id": nid,
                "recipient": {"kind": "agent", "id": AGENT},
                "template": template,
                "params": params,
                "channels": ["in_app"],
                "requested_by": "mobility",
                "requested_at": NOW,
            },
        )

    good = {"titre": "Info", "message": "Bonjour"}
    # The same command sent twice as two events (a producer retry): still one notification.
    await notify.produce("notify.commands.v1", command("generic.message", good))
    await notify.produce("notify.commands.v1", command("generic.message", good))
    await notify.produce("notify.commands.v1", command("no.such", good, "cmd-2"))
    await notify.produce("notify.commands.v1", command("generic.message", {"titre": "x"}, "cmd-3"))
    await notify.produce_raw(
        "notify.commands.v1",
        json.dumps({"notification_id": "cmd-4"}).encode(),
        [
            ("ce_specversion", b"1.0"),
            ("ce_id", b"bad-1"),
            ("ce_source", b"urn:atlas:mobility"),
            ("ce_type", notify_schema.SEND_NOTIFICATION.encode()),
            ("content-type", b"application/json"),
        ],
    )
    dead = await read_topic(
        notify.bootstrap, notify.topic("notify.commands.v1.dlq"), count=3, timeout=20
    )
    reasons = sorted(dlq_reason(list(r.headers)) or "" for r in dead)
    assert reasons[0] == "PermanentError: MissingVariables: missing variables: message"
    assert reasons[1] == "PermanentError: TemplateNotFound: no template no.such"
    assert reasons[2].startswith("invalid data: recipient: Field required")
    (only,) = await notifications_of(notify, AGENT)
    assert only["template"] == "generic.message"
    assert only["requested_by"] == "mobility"
