"""Missions on the real broker and PostgreSQL: every HR mission event type, duplicate and stale
revisions, an uncovered and an unknown home commune, a malformed event in the DLQ while the next
is processed, a missing return flagged once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from mobility_factories import TOULON, RunningService, TopicReader, new_ids

from atlas_events.auth import Role
from atlas_events.cloudevents import CloudEvent
from atlas_events.consumer import DLQ_CONSUMER, dlq_reason
from atlas_events.schemas import missions as ms
from atlas_events.schemas import requests as rq
from atlas_events.testing import wait_until
from atlas_mobility.deps import context_of
from atlas_mobility.missions.service import MissionDesk

HR_SOURCE = "urn:atlas:rh:sirh-terre"
RETOUR = "retour_mission"
TYPES = {
    "announced": ms.MISSION_ANNOUNCED,
    "amended": ms.MISSION_AMENDED,
    "cancelled": ms.MISSION_CANCELLED,
    "returned": ms.MISSION_RETURNED,
}


def mission(
    mission_id: str,
    agent_id: str,
    *,
    revision: int = 1,
    home: str = "83137",
    departure: date | None = None,
    planned_return: date | None = None,
    children: bool = True,
    family_contact: bool = True,
) -> dict[str, Any]:
    """A mission snapshot as contracts/HR-MISSIONS.md shows it."""
    leave = departure or date.today() + timedelta(days=60)
    back = planned_return or leave + timedelta(days=120)
    return {
        "mission_id": mission_id,
        "revision": revision,
        "agent": {
            "agent_id": agent_id,
            "rank": "Sergent",
            "given_name": "Camille",
            "family_name": "Martin",
            "email": "camille.martin@example.fr",
            "population": "militaire",
        },
        "home_commune_insee": home,
        "kind": "opex",
        "theatre": "Opération Lynx (Estonie)",
        "departure_date": leave.isoformat(),
        "planned_return_date": back.isoformat(),
        "household": {
            "partner": True,
            "children": [{"child_ref": "c1", "birth_date": "2019-04-12"}] if children else [],
        },
        "options": {"family_contact": family_contact, "documents_to_deposit": False},
    }


def event(data: dict[str, Any], kind: str = "announced") -> CloudEvent:
    return CloudEvent.create(TYPES[kind], HR_SOURCE, data)


def ref(mission_id: str, agent_id: str, revision: int, **fields: Any) -> dict[str, Any]:
    return {
        "mission_id": mission_id,
        "revision": revision,
        "agent": {"agent_id": agent_id},
        **fields,
    }


async def publish(svc: RunningService, ev: CloudEvent) -> None:
    await svc.publish(svc.topics.missions, ev, ev.data["agent"]["agent_id"])


async def get(svc: RunningService, mission_id: str) -> dict[str, Any] | None:
    response = await svc.client.get(f"/v1/missions/{mission_id}", headers=svc.ops)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_mission(
    svc: RunningService, mission_id: str, *, revision: int = 1, entries: int = 1
) -> dict[str, Any]:
    """Poll until the mission holds `revision` and its timeline has `entries` entries."""

    async def probe() -> dict[str, Any] | None:
        found = await get(svc, mission_id)
        if found is None or found["revision"] < revision or len(found["timeline"]) < entries:
            return None
        return found

    return await wait_until(probe, timeout=30, interval=0.1)


def case(found: dict[str, Any], kind: str) -> dict[str, Any]:
    [one] = [c for c in found["cases"] if c["kind"] == kind]
    return one


@pytest.fixture(scope="module")
async def commands(mobility: RunningService) -> AsyncIterator[TopicReader]:
    reader = TopicReader(mobility.bootstrap, mobility.topics.commands)
    await reader.start()
    yield reader
    await reader.stop()


@pytest.fixture(scope="module")
async def facts(mobility: RunningService) -> AsyncIterator[TopicReader]:
    reader = TopicReader(mobility.bootstrap, mobility.topics.prefix + "mobility.missions.v1")
    await reader.start()
    yield reader
    await reader.stop()


async def test_announced_opens_the_departure_case_and_requests_at_the_home_space(
    mobility: RunningService, commands: TopicReader, facts: TopicReader
) -> None:
    mission_id, agent_id = new_ids()
    leave = date.today() + timedelta(days=60)
    await publish(mobility, event(mission(mission_id, agent_id, departure=leave)))
    found = await wait_mission(mobility, mission_id)
    assert found["status"] == "ouvert"
    assert found["atlas_id"] == TOULON
    depart = case(found, "depart_mission")
    assert depart["status"] == "ouvert"
    assert depart["prestation_codes"] == ["FAM-016", "SOC-001", "FAM-003"]
    assert {m["code"]: m["due_date"] for m in depart["milestones"]} == {
        "procuration_dossier_administratif": (leave - timedelta(days=30)).isoformat(),
        "contact_famille_designe": (leave - timedelta(days=15)).isoformat(),
        "derniere_verification": (leave - timedelta(days=3)).isoformat(),
    }
    opened = await commands.wait_for(3, subject_prefix=mission_id, type=rq.OPEN_REQUEST)
    assert {e.data["prestation_code"] for e in opened} == {"FAM-016", "SOC-001", "FAM-003"}
    assert {e.data["atlas_id"] for e in opened} == {TOULON}
    assert {e.data["case_kind"] for e in opened} == {"depart_mission"}
    assert sorted(e.data["case_id"] for e in opened) == sorted(depart["request_keys"])
    [fact] = await facts.wait_for(1, subject_prefix=mission_id, type=ms.MISSION_OPENED)
    assert fact.data["atlas_id"] == TOULON
    assert fact.data["agent_email"] == "camille.martin@example.fr"  # for notify


async def test_duplicate_and_stale_revisions_are_recorded_and_ignored(
    mobility: RunningService, commands: TopicReader
) -> None:
    mission_id, agent_id = new_ids()
    first = event(mission(mission_id, agent_id, revision=1))
    await publish(mobility, first)
    await publish(mobility, event(mission(mission_id, agent_id, revision=2), "amended"))
    await publish(mobility, first)  # redelivered: stale now
    await publish(mobility, event(mission(mission_id, agent_id, revision=2), "amended"))
    found = await wait_mission(mobility, mission_id, revision=2, entries=4)
    outcomes = [e["outcome"] for e in found["timeline"]]
    assert outcomes == ["applied", "applied", "stale", "duplicate"]
    assert "périmée" in found["timeline"][2]["summary"]
    opened = await commands.wait_for(3, subject_prefix=mission_id, type=rq.OPEN_REQUEST)
    assert len(opened) == 3  # one per prestation, never twice


async def test_amended_reschedules_and_follows_the_options(
    mobility: RunningService, commands: TopicReader
) -> None:
    mission_id, agent_id = new_ids()
    leave = date.today() + timedelta(days=60)
    await publish(mobility, event(mission(mission_id, agent_id, departure=leave)))
    await wait_mission(mobility, mission_id)
    later = leave + timedelta(days=10)
    amended = mission(mission_id, agent_id, revision=2, departure=later, family_contact=False)
    await publish(mobility, event(amended, "amended"))
    found = await wait_mission(mobility, mission_id, revision=2, entries=2)
    depart = case(found, "depart_mission")
    assert depart["prestation_codes"] == ["FAM-016", "FAM-003"]
    assert (
        min(m["due_date"] for m in depart["milestones"]) == (later - timedelta(days=30)).isoformat()
    )
    assert "departure_date" in found["timeline"][1]["summary"]
    [closed] = await commands.wait_for(1, subject_prefix=mission_id, type=rq.CLOSE_REQUEST)
    assert closed.data["case_id"].endswith(":SOC-001")
    assert closed.data["outcome"] == "cancelled"


async def test_cancelled_closes_the_case_and_its_requests(
    mobility: RunningService, commands: TopicReader, facts: TopicReader
) -> None:
    mission_id, agent_id = new_ids()
    await publish(mobility, event(mission(mission_id, agent_id, children=False)))
    await wait_mission(mobility, mission_id)
    reason = "Mission annulée par l'état-major"
    await publish(mobility, event(ref(mission_id, agent_id, 2, reason=reason), "cancelled"))
    found = await wait_mission(mobility, mission_id, revision=2, entries=2)
    assert found["status"] == "annule"
    assert case(found, "depart_mission")["status"] == "annule"
    closed = await commands.wait_for(2, subject_prefix=mission_id, type=rq.CLOSE_REQUEST)
    assert {e.data["outcome"] for e in closed} == {"cancelled"}
    [fact] = await facts.wait_for(1, subject_prefix=mission_id, type=ms.MISSION_CANCELLED_FACT)
    assert fact.data["reason"] == reason


async def test_returned_opens_the_return_case(
    mobility: RunningService, commands: TopicReader, facts: TopicReader
) -> None:
    mission_id, agent_id = new_ids()
    leave = date.today() - timedelta(days=100)
    await publish(
        mobility,
        event(
            mission(
                mission_id,
                agent_id,
                departure=leave,
                planned_return=date.today() + timedelta(days=5),
            )
        ),
    )
    await wait_mission(mobility, mission_id)
    back = date.today()
    await publish(
        mobility, event(ref(mission_id, agent_id, 2, return_date=back.isoformat()), "returned")
    )
    found = await wait_mission(mobility, mission_id, revision=2, entries=2)
    assert found["status"] == "en_retour"
    assert found["return_date"] == back.isoformat()
    assert case(found, "depart_mission")["status"] == "termine"
    retour = case(found, "retour_mission")
    assert retour["status"] == "ouvert"
    assert retour["prestation_codes"] == ["ADM-014", "ADM-021"]
    assert {m["code"]: m["due_date"] for m in retour["milestones"]}["formalites_retour"] == (
        back + timedelta(days=7)
    ).isoformat()
    opened = await commands.wait_for(5, subject_prefix=mission_id, type=rq.OPEN_REQUEST)
    # The commands topic is keyed by request: no order across its partitions.
    back_requests = {e.data["prestation_code"] for e in opened if e.data["case_kind"] == RETOUR}
    assert back_requests == {"ADM-014", "ADM-021"}
    [fact] = await facts.wait_for(1, subject_prefix=mission_id, type=ms.MISSION_RETURN_OPENED)
    assert fact.data["trigger"] == "returned"


@pytest.mark.parametrize("home", ["98611", "99999"])  # uncovered, unknown
async def test_uncovered_or_unknown_home_commune_opens_a_orienter(
    mobility: RunningService, commands: TopicReader, home: str
) -> None:
    mission_id, agent_id = new_ids()
    await publish(mobility, event(mission(mission_id, agent_id, home=home)))
    found = await wait_mission(mobility, mission_id)
    assert found["status"] == "a_orienter"
    assert found["atlas_id"] is None
    depart = case(found, "depart_mission")
    assert depart["status"] == "a_orienter"
    assert len(depart["milestones"]) == 3  # nothing lost
    assert f"commune {home}" in found["timeline"][0]["summary"]
    await commands.poll()
    assert commands.events(subject_prefix=mission_id) == []
    # HR corrects the commune: the requests open at the space covering it.
    await publish(mobility, event(mission(mission_id, agent_id, revision=2), "amended"))
    found = await wait_mission(mobility, mission_id, revision=2, entries=2)
    assert found["status"] == "ouvert"
    assert case(found, "depart_mission")["atlas_id"] == TOULON
    await commands.wait_for(3, subject_prefix=mission_id, type=rq.OPEN_REQUEST)


async def test_malformed_event_goes_to_the_dlq_and_the_next_is_processed(
    mobility: RunningService,
) -> None:
    dlq = TopicReader(mobility.bootstrap, mobility.topics.missions + ".dlq")
    await dlq.start()
    try:
        bad_id, bad_agent = new_ids()
        invalid = mission(bad_id, bad_agent)
        invalid["planned_return_date"] = "2000-01-01"  # before the departure
        bad = event(invalid)
        await publish(mobility, bad)
        mission_id, agent_id = new_ids()
        await publish(mobility, event(mission(mission_id, agent_id)))
        await wait_mission(mobility, mission_id)

        async def parked() -> list[Any] | None:
            await dlq.poll()
            mine = [r for r in dlq.records if dict(r.headers).get("ce_id") == bad.id.encode()]
            return mine or None

        [record] = await wait_until(parked, timeout=20)
        reason = dlq_reason(list(record.headers)) or ""
        assert "planned_return_date is before departure_date" in reason
        assert dict(record.headers)[DLQ_CONSUMER] == b"mobility.missions"
        assert await get(mobility, bad_id) is None
    finally:
        await dlq.stop()


async def test_missing_return_is_flagged_once(
    mobility: RunningService, commands: TopicReader, facts: TopicReader
) -> None:
    mission_id, agent_id = new_ids()
    planned = date.today() - timedelta(days=2)
    data = mission(
        mission_id, agent_id, departure=planned - timedelta(days=90), planned_return=planned
    )
    await publish(mobility, event(data))
    # The worker's periodic check flags it (every 0.5 s here); then two more passes by hand.
    found = await wait_until(lambda: _flagged(mobility, mission_id), timeout=30, interval=0.1)
    runtime = mobility.app.state.runtime
    context = context_of(runtime)
    for _ in range(2):
        sink = context.sink()
        async with runtime.db.transaction() as session:
            await MissionDesk(session, context, sink).flag_missing_returns()
            await sink.flush(session, runtime.outbox)
    found = await wait_mission(mobility, mission_id, entries=2)
    flagged = [e for e in found["timeline"] if e["outcome"] == "flagged"]
    assert len(flagged) == 1
    assert found["status"] == "en_retour"
    retour = case(found, "retour_mission")
    assert retour["reference_date"] == planned.isoformat()
    [overdue] = await facts.wait_for(1, subject_prefix=mission_id, type=ms.MISSION_RETURN_OVERDUE)
    assert overdue.data["atlas_id"] == TOULON
    flags = await commands.wait_for(1, subject_prefix=f"{mission_id}:retour_non_signale")
    await facts.wait_for(1, subject_prefix=mission_id, type=ms.MISSION_RETURN_OPENED)
    # A returned event afterwards reschedules the return case; nothing is flagged again.
    back = date.today()
    await publish(
        mobility, event(ref(mission_id, agent_id, 2, return_date=back.isoformat()), "returned")
    )
    found = await wait_mission(mobility, mission_id, revision=2, entries=3)
    assert case(found, "retour_mission")["reference_date"] == back.isoformat()
    await facts.poll()
    await commands.poll()
    assert len(facts.events(subject_prefix=mission_id, type=ms.MISSION_RETURN_OVERDUE)) == 1
    assert len(commands.events(subject_prefix=f"{mission_id}:retour_non_signale")) == len(flags)


async def _flagged(svc: RunningService, mission_id: str) -> dict[str, Any] | None:
    found = await get(svc, mission_id)
    return found if found is not None and found["return_flagged_at"] else None


async def test_read_access_follows_the_agent_and_the_home_space(mobility: RunningService) -> None:
    mission_id, agent_id = new_ids()
    await publish(mobility, event(mission(mission_id, agent_id)))
    await wait_mission(mobility, mission_id)
    url = f"/v1/missions/{mission_id}"
    staff = mobility.token("staff-1", Role.STAFF, atlas_id=TOULON)
    other = mobility.token("staff-2", Role.STAFF, atlas_id="ATLAS-29019-BREST")
    assert (await mobility.client.get(url, headers=staff)).status_code == 200
    assert (
        await mobility.client.get(url, headers=mobility.token(agent_id, Role.AGENT))
    ).status_code == 200
    refused = await mobility.client.get(url, headers=other)
    assert refused.status_code == 403
    assert refused.json()["error"]
    listed = await mobility.client.get("/v1/missions", headers=staff)
    assert listed.status_code == 200
    assert mission_id in {m["mission_id"] for m in listed.json()}
    assert {m["atlas_id"] for m in listed.json()} == {TOULON}
    mine = await mobility.client.get("/v1/missions", headers=mobility.token(agent_id, Role.AGENT))
    assert [m["mission_id"] for m in mine.json()] == [mission_id]
    missing = await mobility.client.get("/v1/missions/NOPE-1", headers=mobility.ops)
    assert missing.status_code == 404
    assert missing.json()["error"] == "MissionNotFound"
