"""A mission through every service, each its own process: HR announces a mission → the departure
case and its requests at the home space (mobility → requests) → the agent's e-mail (notify, real
SMTP server) → staff file a request for the family contact by proxy → HR reports the return →
the return case and its requests. Shares the flagship's fixtures (platform, SMTP, clamd)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from e2e_platform import Mailbox, Platform, poll
from test_flagship import clamd_address, platform, smtp_server  # noqa: F401  (shared fixtures)

from atlas_devstack.hrsim import PlannedEvent, publish
from atlas_events.auth import Role
from atlas_events.schemas import missions as ms

TOPIC = "hr.missions.v1"
SOURCE = "urn:atlas:rh:sirh-terre"
TOULON = "ATLAS-83137-TOULON"


def _announced(mission_id: str, agent_id: str, email: str) -> PlannedEvent:
    leave = date.today() + timedelta(days=45)
    data = ms.MissionAnnounced.model_validate(
        {
            "mission_id": mission_id,
            "revision": 1,
            "agent": {
                "agent_id": agent_id,
                "rank": "Caporal-chef",
                "given_name": "Léa",
                "family_name": "Durand",
                "email": email,
                "population": "militaire",
            },
            "home_commune_insee": "83137",
            "kind": "opex",
            "departure_date": leave.isoformat(),
            "planned_return_date": (leave + timedelta(days=120)).isoformat(),
            "household": {"partner": True, "children": []},
            "options": {"family_contact": True, "documents_to_deposit": False},
        }
    ).model_dump(mode="json", exclude_none=True)
    return PlannedEvent(ms.MISSION_ANNOUNCED, SOURCE, agent_id, data)


@pytest.mark.timeout(180)
def test_mission_announced_to_email_to_proxy_request_to_return_case(
    platform: Platform,  # noqa: F811
    kafka_bootstrap: str,
    smtp_server: tuple[int, Mailbox],  # noqa: F811
) -> None:
    _, mailbox = smtp_server
    agent_id = f"{secrets.randbelow(10**10):010d}"
    mission_id = f"OPEX-E2E-{secrets.token_hex(4).upper()}"
    email = f"agent.{agent_id}@example.fr"
    ops = platform.client("e2e-ops", Role.OPS)
    mission_url = platform.url("mobility", f"/v1/missions/{mission_id}")

    # 1. HR announces the mission on hr.missions.v1.
    asyncio.run(publish([_announced(mission_id, agent_id, email)], kafka_bootstrap, topic=TOPIC))

    # 2. The departure case opens at the home space, with one request per linked prestation.
    def requests_of(kind: str) -> list[dict[str, Any]] | None:
        response = ops.get(
            platform.url("requests", "/v1/requests"),
            params={"agent_id": agent_id, "atlas_id": TOULON},
        )
        assert response.status_code == 200, response.text
        found = [r for r in response.json()["items"] if r["case_kind"] == kind]
        return found or None

    departure = poll("the departure requests", lambda: requests_of("depart_mission"), timeout=45)
    mission = ops.get(mission_url).json()
    assert mission["status"] == "ouvert"
    [case] = [c for c in mission["cases"] if c["kind"] == "depart_mission"]
    assert case["prestation_codes"] == ["FAM-016", "SOC-001"]
    departure = poll(
        "both departure requests",
        lambda: r if (r := requests_of("depart_mission")) and len(r) == 2 else None,
        timeout=30,
    )
    assert {r["prestation_code"] for r in departure} == {"FAM-016", "SOC-001"}
    assert {r["channel"] for r in departure} == {"anticipation"}
    assert {r["case_id"] for r in departure} == set(case["request_keys"])

    # 3. The agent's e-mail reaches the SMTP server.
    emails = poll(f"an e-mail to {email}", lambda: mailbox.to(email), timeout=30)
    assert any("départ en mission" in str(m["Subject"]).lower() for m in emails)

    # 4. During the mission staff file a request for the family contact, by proxy: nothing
    #    needs the agent.
    staff = platform.client(f"staff-e2e-{secrets.token_hex(3)}", Role.STAFF, atlas_id=TOULON)
    proxy_request = {
        "prestation_code": "FAM-016",
        "title": "Demande de la conjointe pendant la mission",
        "channel": "telephone",
        "agent_id": agent_id,
        "proxy": {
            "name": "Alex Durand",
            "relationship": "conjoint",
            "power_of_attorney_ref": f"procuration-{agent_id}",
        },
    }

    def file_by_proxy() -> httpx.Response | None:
        response = staff.post(platform.url("requests", "/v1/requests"), json=proxy_request)
        # The requests service learns the spaces and prestations from the catalog's topics: its
        # replica may not hold them yet (commands are taken before, on the case's word).
        not_yet = ("SpaceNotFound", "UnknownPrestation")
        return None if response.json().get("error") in not_yet else response

    filed = poll("the proxy request", file_by_proxy, timeout=30)
    assert filed.status_code == 201, filed.text
    proxied = filed.json()
    assert proxied["on_behalf"] is True
    assert proxied["proxy_name"] == "Alex Durand"
    assert proxied["atlas_id"] == TOULON

    # 5. HR reports the return: the return case and its requests open, departure requests close.
    returned = PlannedEvent(
        ms.MISSION_RETURNED,
        SOURCE,
        agent_id,
        {
            "mission_id": mission_id,
            "revision": 2,
            "agent": {"agent_id": agent_id},
            "return_date": date.today().isoformat(),
        },
    )
    asyncio.run(publish([returned], kafka_bootstrap, topic=TOPIC))
    back = poll(
        "the return requests",
        lambda: r if (r := requests_of("retour_mission")) and len(r) == 2 else None,
        timeout=45,
    )
    assert {r["prestation_code"] for r in back} == {"ADM-014", "ADM-021"}
    mission = ops.get(mission_url).json()
    assert mission["status"] == "en_retour"
    kinds = {c["kind"]: c["status"] for c in mission["cases"]}
    assert kinds == {"depart_mission": "termine", "retour_mission": "ouvert"}
    assert poll(
        "the return e-mail",
        lambda: [m for m in mailbox.to(email) if "retour" in str(m["Subject"]).lower()] or None,
        timeout=30,
    )
