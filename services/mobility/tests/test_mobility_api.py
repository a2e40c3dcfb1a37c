"""HTTP ingestion and the read API: tokens, roles, scoping and bad input."""

from __future__ import annotations

import json
from datetime import date, timedelta

from mobility_factories import (
    BREST,
    TOULON,
    RunningService,
    hr_event,
    new_ids,
    snapshot,
    structured,
)

from atlas_events.auth import LocalSigningKey, Role

CE_JSON = {"Content-Type": "application/cloudevents+json"}


async def post_event(
    mobility: RunningService, body: bytes, headers: dict[str, str] | None = None
) -> dict:
    response = await mobility.client.post(
        "/v1/hr/mutation-events", content=body, headers={**CE_JSON, **(headers or {})}
    )
    return {"status": response.status_code, "body": response.json()}


async def test_http_ingestion_with_a_valid_token_opens_the_dossier(
    mobility: RunningService,
) -> None:
    mutation_id, agent_id = new_ids()
    event = hr_event(snapshot(mutation_id, agent_id))
    hr_token = mobility.token("sirh-terre", Role.HR_SYSTEM)
    answer = await post_event(mobility, structured(event), hr_token)
    assert answer["status"] == 202, answer
    assert answer["body"] == {
        "status": "accepted",
        "id": event.id,
        "type": event.type,
        "mutation_id": mutation_id,
        "revision": 1,
    }
    again = await post_event(mobility, structured(event), hr_token)
    assert again["status"] == 202
    assert again["body"]["status"] == "duplicate"
    dossier = await mobility.wait_dossier(mutation_id, cases=2)
    assert dossier["destination_atlas_id"] == TOULON
    entries = await mobility.timeline(mutation_id)
    assert [e["outcome"] for e in entries if e["event_id"]] == ["applied"]


async def test_http_ingestion_refuses_missing_forged_and_wrong_role_tokens(
    mobility: RunningService,
) -> None:
    mutation_id, agent_id = new_ids()
    body = structured(hr_event(snapshot(mutation_id, agent_id)))
    missing = await post_event(mobility, body)
    assert missing["status"] == 401
    assert missing["body"]["error"] == "NotAuthenticated"
    forged = LocalSigningKey.generate().issue("sirh", [Role.HR_SYSTEM])
    refused = await post_event(mobility, body, {"Authorization": f"Bearer {forged}"})
    assert refused["status"] == 401
    for roles in ((Role.AGENT,), (Role.OPS,), (Role.STAFF,)):
        wrong = await post_event(mobility, body, mobility.token("x", *roles, atlas_id=TOULON))
        assert wrong["status"] == 403, wrong
        assert wrong["body"]["error"] == "Forbidden"
    assert await mobility.dossier(mutation_id) is None


async def test_http_ingestion_names_what_is_wrong_with_a_body(mobility: RunningService) -> None:
    hr_token = mobility.token("sirh-terre", Role.HR_SYSTEM)
    not_json = await post_event(mobility, b"{nope", hr_token)
    assert not_json["status"] == 400
    assert not_json["body"]["error"] == "InvalidCloudEvent"
    assert "JSON" in not_json["body"]["detail"]

    no_type = json.loads(structured(hr_event(snapshot(*new_ids()))))
    del no_type["type"]
    missing = await post_event(mobility, json.dumps(no_type).encode(), hr_token)
    assert missing["status"] == 400
    assert "type" in missing["body"]["detail"]

    other = json.loads(structured(hr_event(snapshot(*new_ids()))))
    other["type"] = "fr.defense.rh.promotion.v1"
    unknown = await post_event(mobility, json.dumps(other).encode(), hr_token)
    assert unknown["status"] == 400
    assert unknown["body"]["error"] == "UnsupportedEventType"

    mutation_id, agent_id = new_ids()
    bad = snapshot(mutation_id, agent_id)
    bad["agent"]["agent_id"] = "12"
    bad["destination"]["commune_insee"] = "ABCDE"
    invalid = await post_event(mobility, structured(hr_event(bad)), hr_token)
    assert invalid["status"] == 422
    assert invalid["body"]["error"] == "InvalidMutation"
    fields = {p["field"] for p in invalid["body"]["detail"]}
    assert fields == {"agent.agent_id", "destination.commune_insee"}

    plain = await mobility.client.post(
        "/v1/hr/mutation-events",
        content=b"hello",
        headers={"Content-Type": "text/plain", **hr_token},
    )
    assert plain.status_code == 415
    assert await mobility.dossier(mutation_id) is None


async def test_dossier_reads_are_scoped(mobility: RunningService) -> None:
    mutation_id, agent_id = new_ids()
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id)))
    await mobility.wait_dossier(mutation_id, cases=2)
    other_agent = new_ids()[1]
    allowed = [
        mobility.token(agent_id, Role.AGENT),
        mobility.token("staff-toulon", Role.STAFF, atlas_id=TOULON),
        mobility.token("manager-toulon", Role.MANAGER, atlas_id=TOULON),
        mobility.ops,
    ]
    refused = [
        mobility.token(other_agent, Role.AGENT),
        mobility.token("staff-brest", Role.STAFF, atlas_id=BREST),
        mobility.token("staff-nowhere", Role.STAFF),
        mobility.token("sirh", Role.HR_SYSTEM),
    ]
    for headers in allowed:
        for path in (f"/v1/dossiers/{mutation_id}", f"/v1/dossiers/{mutation_id}/timeline"):
            response = await mobility.client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text)
    for headers in refused:
        response = await mobility.client.get(f"/v1/dossiers/{mutation_id}", headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "Forbidden"
    assert (await mobility.client.get(f"/v1/dossiers/{mutation_id}")).status_code == 401
    missing = await mobility.client.get("/v1/dossiers/NOPE-0000", headers=mobility.ops)
    assert missing.status_code == 404
    assert missing.json()["error"] == "DossierNotFound"

    mine = await mobility.client.get("/v1/dossiers", headers=mobility.token(agent_id, Role.AGENT))
    assert [d["mutation_id"] for d in mine.json()] == [mutation_id]
    by_ops = await mobility.client.get(f"/v1/dossiers?agent_id={agent_id}", headers=mobility.ops)
    assert [d["mutation_id"] for d in by_ops.json()] == [mutation_id]
    snooping = await mobility.client.get(
        f"/v1/dossiers?agent_id={agent_id}", headers=mobility.token(other_agent, Role.AGENT)
    )
    assert snooping.status_code == 403
    brest_staff = await mobility.client.get(
        f"/v1/dossiers?agent_id={agent_id}",
        headers=mobility.token("staff-brest", Role.STAFF, atlas_id=BREST),
    )
    assert brest_staff.json() == []
    bad_query = await mobility.client.get("/v1/dossiers?agent_id=abc", headers=mobility.ops)
    assert bad_query.status_code == 422
    no_agent = await mobility.client.get("/v1/dossiers", headers=mobility.ops)
    assert no_agent.status_code == 422
    assert no_agent.json()["error"] == "MissingParameter"


async def test_arrivals_list_upcoming_dossiers_of_the_space(mobility: RunningService) -> None:
    soon_id, soon_agent = new_ids()
    late_id, late_agent = new_ids()
    await mobility.publish_hr(
        hr_event(snapshot(soon_id, soon_agent, report_date=date.today() + timedelta(days=40)))
    )
    await mobility.publish_hr(
        hr_event(snapshot(late_id, late_agent, report_date=date.today() + timedelta(days=300)))
    )
    await mobility.wait_dossier(soon_id, cases=2)
    await mobility.wait_dossier(late_id, cases=2)
    staff = mobility.token("staff-toulon", Role.STAFF, atlas_id=TOULON)
    response = await mobility.client.get(f"/v1/spaces/{TOULON}/arrivals?months=3", headers=staff)
    assert response.status_code == 200, response.text
    listed = [d["mutation_id"] for d in response.json()["dossiers"]]
    assert soon_id in listed
    assert late_id not in listed
    arrival = next(d for d in response.json()["dossiers"] if d["mutation_id"] == soon_id)
    assert {c["kind"]: c["status"] for c in arrival["cases"]} == {
        "logement": "ouvert",
        "demenagement": "ouvert",
    }
    longer = await mobility.client.get(f"/v1/spaces/{TOULON}/arrivals?months=12", headers=staff)
    assert late_id in [d["mutation_id"] for d in longer.json()["dossiers"]]
    other = mobility.token("staff-brest", Role.STAFF, atlas_id=BREST)
    assert (
        await mobility.client.get(f"/v1/spaces/{TOULON}/arrivals", headers=other)
    ).status_code == 403
    bad = await mobility.client.get(f"/v1/spaces/{TOULON}/arrivals?months=0", headers=staff)
    assert bad.status_code == 422


async def test_a_revision_beyond_the_integer_columns_is_refused_at_the_door(
    mobility: RunningService,
) -> None:
    # Found by the API fuzzing: revision 2**31 was a valid HR event (202), which the worker
    # could not store in the dossier's integer column. The contract now bounds it.
    mutation_id, agent_id = new_ids()
    hr_token = mobility.token("sirh-terre", Role.HR_SYSTEM)
    event = hr_event(snapshot(mutation_id, agent_id, revision=2**31))
    answer = await post_event(mobility, structured(event), hr_token)
    assert answer["status"] == 422, answer
    assert answer["body"]["error"] == "InvalidMutation"
    assert [p["field"] for p in answer["body"]["detail"]] == ["revision"]
    assert await mobility.dossier(mutation_id) is None
    highest = hr_event(snapshot(mutation_id, agent_id, revision=2**31 - 1))
    assert (await post_event(mobility, structured(highest), hr_token))["status"] == 202


async def test_the_openapi_documents_the_ingestion_body(mobility: RunningService) -> None:
    document = (await mobility.client.get("/openapi.json")).json()
    body = document["paths"]["/v1/hr/mutation-events"]["post"]["requestBody"]
    assert body["required"] is True
    variants = body["content"]["application/cloudevents+json"]["schema"]["oneOf"]
    assert [v["properties"]["type"]["const"] for v in variants] == [
        "fr.defense.rh.mutation.announced.v1",
        "fr.defense.rh.mutation.amended.v1",
        "fr.defense.rh.mutation.cancelled.v1",
    ]
    ref = variants[0]["properties"]["data"]["$ref"].rsplit("/", 1)[1]
    assert "revision" in document["components"]["schemas"][ref]["required"]
