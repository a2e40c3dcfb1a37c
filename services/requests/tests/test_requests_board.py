"""The offers-and-needs board: matching by subject and proximity, contacts only after consent."""

from __future__ import annotations

from typing import Any

from requests_factories import RequestsApp

from atlas_events.schemas import notify


async def _post(rq: RequestsApp, who: str, expect: int = 201, **body: Any) -> Any:
    body.setdefault("subject", "mathematiques")
    body.setdefault("contact", f"{who}@example.fr")
    return await rq.call("POST", "/v1/board/posts", rq.agent(who), expect, json=body)


async def test_matching_by_commune_then_departement_and_consent(rq: RequestsApp) -> None:
    # Needs in Toulon (83137) and La Seyne (83126); an offer in Brest; then an offer in Toulon.
    need_here = await _post(rq, "2019600001", kind="need", level="college", commune_insee="83137")
    need_near = await _post(rq, "2019600002", kind="need", level="college", commune_insee="83126")
    await _post(rq, "2019600003", kind="need", level="lycee", commune_insee="83137")  # other level
    await _post(rq, "2019600004", kind="need", subject="francais", commune_insee="83137")
    far = await _post(rq, "2019600005", kind="offer", level="college", commune_insee="29019")
    assert far["matches"] == []

    offer = await _post(
        rq,
        "2019600009",
        kind="offer",
        subject=" Mathematiques ",
        level="college",
        commune_insee="83137",
    )
    assert offer["post"]["subject"] == "mathematiques"
    suggested = offer["matches"]
    assert [(m["other_post"]["post_id"], m["proximity"]) for m in suggested] == [
        (need_here["post"]["post_id"], "commune"),
        (need_near["post"]["post_id"], "departement"),
    ]
    assert all(m["other_contact"] is None for m in suggested)
    assert all(m["other_post"]["contact"] is None for m in suggested)  # never before consent

    match_id = suggested[0]["match_id"]
    helper, family = rq.agent("2019600009"), rq.agent("2019600001")
    mine = await rq.call(
        "POST", f"/v1/board/matches/{match_id}/consent", helper, json={"consent": True}
    )
    assert mine["status"] == "suggested"
    assert mine["other_contact"] is None
    seen_by_family = await rq.call("GET", f"/v1/board/matches/{match_id}", family)
    assert seen_by_family["other_consent"] is True
    assert seen_by_family["other_contact"] is None
    both = await rq.call(
        "POST", f"/v1/board/matches/{match_id}/consent", family, json={"consent": True}
    )
    assert both["status"] == "contact_shared"
    assert both["other_contact"] == "2019600009@example.fr"
    shared = await rq.call("GET", f"/v1/board/matches/{match_id}", helper)
    assert shared["other_contact"] == "2019600001@example.fr"
    again = await rq.call(
        "POST", f"/v1/board/matches/{match_id}/consent", family, 409, json={"consent": False}
    )
    assert again["error"] == "BoardError"

    # The other match: declined by one side, the contact stays private.
    other_id = suggested[1]["match_id"]
    declined = await rq.call(
        "POST",
        f"/v1/board/matches/{other_id}/consent",
        rq.agent("2019600002"),
        json={"consent": False},
    )
    assert declined["status"] == "declined"
    assert declined["other_contact"] is None
    # Outsiders do not see matches.
    await rq.call("GET", f"/v1/board/matches/{match_id}", rq.agent("2019600004"), 404)
    listed = await rq.call("GET", f"/v1/board/posts/{offer['post']['post_id']}/matches", helper)
    assert [m["proximity"] for m in listed] == ["commune", "departement"]

    # Both sides were notified through notify's command topic; contacts never travel there.
    sent = await rq.notifications.wait_for(match_id, 4)
    assert all(e.type == notify.SEND_NOTIFICATION for e in sent)
    templates = sorted((e.data["recipient"]["id"], e.data["template"]) for e in sent)
    assert templates == [
        ("2019600001", "requests.board_contact_shared"),
        ("2019600001", "requests.board_match_suggested"),
        ("2019600009", "requests.board_contact_shared"),
        ("2019600009", "requests.board_match_suggested"),
    ]
    assert all("@" not in str(e.data["params"]) for e in sent)


async def test_bad_board_input(rq: RequestsApp) -> None:
    bad = await _post(rq, "2019600010", 422, kind="gift", commune_insee="83137")
    assert bad["error"] == "ValidationError"
    bad_commune = await _post(rq, "2019600010", 422, kind="offer", commune_insee="00000")
    assert bad_commune["detail"][0]["field"] == "commune_insee"
    await rq.call("GET", "/v1/board/posts/nope/matches", rq.agent("2019600010"), 404)
    await rq.call(
        "POST",
        "/v1/board/matches/nope/consent",
        rq.agent("2019600010"),
        404,
        json={"consent": True},
    )


async def test_level_longer_than_its_column_is_refused_not_a_server_error(rq: RequestsApp) -> None:
    # Found by the API fuzzing: a 59-character level passed the API's 60-character limit of a
    # subject, then overflowed the 40-character column (500, nothing written).
    level = "0" * 41
    bad = await _post(rq, "2019600011", 422, kind="offer", level=level, commune_insee="83137")
    assert bad["detail"][0]["field"] == "level"
    fits = await _post(rq, "2019600011", kind="offer", level="0" * 40, commune_insee="83137")
    assert fits["post"]["level"] == "0" * 40


async def test_the_openapi_states_the_configured_message_limits(rq: RequestsApp) -> None:
    # Found by the API fuzzing: 11 attachments were valid by the document and refused with 413.
    document = (await rq.http.get("/openapi.json")).json()
    message = document["components"]["schemas"]["MessageIn"]["properties"]
    assert message["attachments"]["maxItems"] == rq.settings.max_attachments
    assert message["body"]["maxLength"] == rq.settings.max_message_chars
