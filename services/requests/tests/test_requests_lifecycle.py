"""The request lifecycle through the API on PostgreSQL, its events on the real broker."""

from __future__ import annotations

import pytest
from requests_factories import RequestsApp

from atlas_events.schemas import requests as rq_events

AGENT = "2019100001"


async def test_every_transition_is_recorded_and_emitted(rq: RequestsApp) -> None:
    staff = rq.staff("toulon", "staff-toulon-7")
    draft = await rq.file(rq.agent(AGENT), draft=True)
    rid = draft["request_id"]
    assert draft["status"] == "brouillon"
    assert draft["channel"] == "en_ligne"
    assert draft["sla"]["paused"] is True
    assert sorted(draft["allowed_transitions"]) == ["sans_suite", "soumise"]

    submitted = await rq.move(rid, "soumise", rq.agent(AGENT))
    assert submitted["sla"]["due_at"] is not None
    assert submitted["sla"]["paused"] is False
    await rq.move(rid, "en_instruction", staff, reason="prise en charge")
    waiting = await rq.move(rid, "en_attente_usager", staff, reason="pièce manquante")
    assert waiting["sla"]["paused"] is True
    assert waiting["sla"]["due_at"] is None
    await rq.move(rid, "en_instruction", rq.agent(AGENT), reason="pièce envoyée")
    done = await rq.move(rid, "terminee", staff, reason="logement attribué")
    assert done["closed_at"] is not None
    reopened = await rq.move(rid, "en_instruction", staff, reason="réclamation")
    assert reopened["closed_at"] is None
    assert reopened["status"] == "en_instruction"
    await rq.move(rid, "refusee", staff, reason="hors critères")
    await rq.move(rid, "en_instruction", staff, reason="réexamen")
    await rq.move(rid, "sans_suite", staff, reason="abandon")

    history = await rq.call("GET", f"/v1/requests/{rid}/history", staff)
    moves = [(t["from_status"], t["to_status"], t["actor"]) for t in history["transitions"]]
    assert moves == [
        (None, "brouillon", AGENT),
        ("brouillon", "soumise", AGENT),
        ("soumise", "en_instruction", "staff-toulon-7"),
        ("en_instruction", "en_attente_usager", "staff-toulon-7"),
        ("en_attente_usager", "en_instruction", AGENT),
        ("en_instruction", "terminee", "staff-toulon-7"),
        ("terminee", "en_instruction", "staff-toulon-7"),
        ("en_instruction", "refusee", "staff-toulon-7"),
        ("refusee", "en_instruction", "staff-toulon-7"),
        ("en_instruction", "sans_suite", "staff-toulon-7"),
    ]
    assert history["transitions"][3]["reason"] == "pièce manquante"
    assert all(t["at"] for t in history["transitions"])

    events = await rq.events_for(rid, 9)
    assert [e.type for e in events][:2] == [
        rq_events.REQUEST_SUBMITTED,
        rq_events.REQUEST_STATUS_CHANGED,
    ]
    changes = [(e.data["previous_status"], e.data["status"]) for e in events[1:]]
    assert changes == [m[:2] for m in moves[2:]]
    assert events[2].data["changed_by"] == "staff-toulon-7"
    assert events[2].data["reason"] == "pièce manquante"
    assert events[3].data["changed_by"] == AGENT


async def test_invalid_transition_is_409_listing_the_allowed_ones(rq: RequestsApp) -> None:
    created = await rq.file(rq.agent(AGENT))
    rid = created["request_id"]
    refused = await rq.move(rid, "terminee", rq.staff("toulon"), expect=409)
    assert refused["error"] == "InvalidTransition"
    assert refused["detail"]["status"] == "soumise"
    assert refused["detail"]["allowed"] == ["en_instruction", "refusee", "sans_suite"]
    # A move that exists, but not for an agent: 403 with what the agent may do.
    denied = await rq.move(rid, "en_instruction", rq.agent(AGENT), expect=403)
    assert denied["detail"]["allowed"] == ["sans_suite"]
    unknown = await rq.move(rid, "archivee", rq.staff("toulon"), expect=422)
    assert unknown["error"] == "ValidationError"
    assert (await rq.call("GET", f"/v1/requests/{rid}", rq.ops))["status"] == "soumise"


async def test_transfer_closes_as_transferred_with_a_link(rq: RequestsApp) -> None:
    created = await rq.file(rq.staff("toulon"), agent_id=AGENT, channel="telephone")
    rid = created["request_id"]
    new = await rq.call(
        "POST",
        f"/v1/requests/{rid}/transfer",
        rq.staff("toulon"),
        201,
        json={"atlas_id": "brest", "reason": "mutation à Brest"},
    )
    assert new["atlas_id"] == "brest"
    assert new["status"] == "soumise"
    assert new["transferred_from"] == rid
    old = await rq.call("GET", f"/v1/requests/{rid}", rq.ops)
    assert old["status"] == "transferee"
    assert old["transferred_to"] == new["request_id"]
    # Staff of the old space no longer see the new request; Brest's staff do.
    await rq.call("GET", f"/v1/requests/{new['request_id']}", rq.staff("toulon"), 404)
    await rq.call("GET", f"/v1/requests/{new['request_id']}", rq.staff("brest"))
    again = await rq.move(rid, "en_instruction", rq.staff("toulon"), expect=409)
    assert again["detail"]["allowed"] == []
    events = await rq.events_for(rid, 2)
    assert events[-1].data["status"] == "transferee"
    assert events[-1].data["transferred_to"] == new["request_id"]
    assert events[-1].data["transferred_to_atlas_id"] == "brest"


async def test_get_request_per_contract(rq: RequestsApp) -> None:
    created = await rq.file(rq.agent(AGENT))
    body = await rq.call("GET", f"/v1/requests/{created['request_id']}", rq.agent(AGENT))
    assert body["status"] == "soumise"
    assert body["atlas_id"] == "toulon"
    assert body["request_id"] == created["request_id"]
    missing = await rq.call("GET", "/v1/requests/nope", rq.ops, 404)
    assert missing["error"] == "RequestNotFound"


async def test_unknown_prestation_is_422_and_writes_nothing(rq: RequestsApp) -> None:
    before = await rq.call("GET", "/v1/requests", rq.agent("2019100099"))
    refused = await rq.file(rq.agent("2019100099"), prestation_code="NOPE-999", expect=422)
    assert refused["error"] == "UnknownPrestation"
    assert refused["detail"]["prestation_code"] == "NOPE-999"
    unknown_space = await rq.file(rq.agent("2019100099"), atlas_id="atlantis", expect=422)
    assert unknown_space["error"] == "SpaceNotFound"
    after = await rq.call("GET", "/v1/requests", rq.agent("2019100099"))
    assert after["total"] == before["total"] == 0


async def test_routing_by_commune(rq: RequestsApp) -> None:
    body = await rq.file(rq.agent(AGENT), atlas_id=None, commune_insee="83126")
    assert body["atlas_id"] == "toulon"
    refused = await rq.file(rq.agent(AGENT), atlas_id=None, commune_insee="75056", expect=422)
    assert refused["detail"]["commune_insee"] == "75056"


@pytest.mark.parametrize("channel", ["guichet", "telephone"])
async def test_agents_file_online_only(rq: RequestsApp, channel: str) -> None:
    refused = await rq.file(rq.agent(AGENT), channel=channel, expect=403)
    assert "en_ligne" in refused["detail"]


async def test_filing_on_behalf_needs_and_records_a_power_of_attorney(rq: RequestsApp) -> None:
    partner = "2019100555"
    for_whom = "2019100556"
    refused = await rq.file(rq.agent(partner), agent_id=for_whom, expect=403)
    assert "power of attorney" in refused["detail"]
    proxy = {"name": "Alex Martin", "relationship": "conjoint", "power_of_attorney_ref": "doc-42"}
    body = await rq.file(rq.agent(partner), agent_id=for_whom, proxy=proxy)
    assert body["agent_id"] == for_whom
    assert body["filed_by"] == partner
    assert body["on_behalf"] is True
    assert body["filed_by_role"] == "proxy"
    assert body["power_of_attorney_ref"] == "doc-42"
    assert body["proxy_name"] == "Alex Martin"
    # Both the agent it is for and the proxy who filed it see it.
    for who in (for_whom, partner):
        await rq.call("GET", f"/v1/requests/{body['request_id']}", rq.agent(who))
    # At the counter: staff record a request a partner brings with a power of attorney.
    counter = await rq.file(rq.staff("toulon"), agent_id=for_whom, channel="guichet", proxy=proxy)
    assert counter["filed_by_role"] == "staff"
    assert counter["on_behalf"] is True
    [submitted] = [
        e
        for e in await rq.events_for(body["request_id"], 1)
        if e.type == rq_events.REQUEST_SUBMITTED
    ]
    assert submitted.data["on_behalf"] is True
    assert submitted.data["filed_by"] == partner
