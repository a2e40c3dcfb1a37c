"""Assignment, messages, the staff queue, KPIs, the CSV export, and who may see what."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from requests_factories import RequestsApp

from atlas_events.schemas import requests as rq_events

AGENT = "2019300001"
OTHER = "2019300002"


async def test_manual_and_least_loaded_assignment_with_history(rq: RequestsApp) -> None:
    manager = rq.manager("brest")
    for staff_id in ("brest-a", "brest-b"):
        await rq.call("PUT", f"/v1/spaces/brest/staff/{staff_id}", manager)
    await rq.call("PUT", "/v1/spaces/brest/staff/x", rq.staff("brest"), 403)
    staff = rq.staff("brest", "brest-a")
    ids = [
        (await rq.file(staff, atlas_id="brest", agent_id=AGENT, channel="guichet"))["request_id"]
        for _ in range(3)
    ]
    manual = await rq.call(
        "POST", f"/v1/requests/{ids[0]}/assignment", staff, json={"assignee": "brest-a"}
    )
    assert manual["assignee"] == "brest-a"
    auto1 = await rq.call("POST", f"/v1/requests/{ids[1]}/assignment", staff, json={"auto": True})
    assert auto1["assignee"] == "brest-b"  # brest-a already holds one
    auto2 = await rq.call("POST", f"/v1/requests/{ids[2]}/assignment", staff, json={"auto": True})
    assert auto2["assignee"] in ("brest-a", "brest-b")
    reassigned = await rq.call(
        "POST", f"/v1/requests/{ids[0]}/assignment", staff, json={"assignee": "brest-b"}
    )
    assert reassigned["assignee"] == "brest-b"
    unknown = await rq.call(
        "POST", f"/v1/requests/{ids[0]}/assignment", staff, 422, json={"assignee": "nobody"}
    )
    assert unknown["error"] == "BadAssignee"
    history = await rq.call("GET", f"/v1/requests/{ids[0]}/history", staff)
    assert [
        (a["assignee"], a["previous_assignee"], a["mode"], a["assigned_by"])
        for a in history["assignments"]
    ] == [
        ("brest-a", None, "manual", "brest-a"),
        ("brest-b", "brest-a", "manual", "brest-a"),
    ]
    assert history["assignments"][0]["at"]
    events = await rq.events_for(ids[1], 2)
    assigned = [e for e in events if e.type == rq_events.REQUEST_ASSIGNED]
    assert assigned[0].data["assignee"] == "brest-b"
    assert assigned[0].data["assigned_by"] is None
    roster = await rq.call("GET", "/v1/spaces/brest/staff", staff)
    assert sum(r["open_requests"] for r in roster) == 3


async def test_messages_thread_attachments_and_size_limit(rq: RequestsApp) -> None:
    created = await rq.file(rq.agent(AGENT))
    rid = created["request_id"]
    url = f"/v1/requests/{rid}/messages"
    await rq.call(
        "POST", url, rq.agent(AGENT), 201, json={"body": "Bonjour", "attachments": ["doc-1"]}
    )
    staff_msg = await rq.call("POST", url, rq.staff("toulon"), 201, json={"body": "Reçu"})
    assert staff_msg["author_role"] == "staff"
    thread = await rq.call("GET", url, rq.agent(AGENT))
    assert [(m["author_role"], m["body"], m["attachments"]) for m in thread] == [
        ("agent", "Bonjour", ["doc-1"]),
        ("staff", "Reçu", []),
    ]
    first = await rq.call("GET", f"/v1/requests/{rid}", rq.ops)
    assert datetime.fromisoformat(first["first_response_at"]) == datetime.fromisoformat(
        staff_msg["posted_at"]
    )
    too_big = await rq.call(
        "POST", url, rq.agent(AGENT), 413, json={"body": "x" * (rq.settings.max_message_chars + 1)}
    )
    assert too_big["error"] == "MessageTooLarge"
    assert too_big["detail"]["max_chars"] == rq.settings.max_message_chars
    bad_ref = await rq.call(
        "POST", url, rq.agent(AGENT), 422, json={"body": "x", "attachments": ["../etc"]}
    )
    assert bad_ref["error"] == "ValidationError"
    await rq.call("POST", url, rq.agent(OTHER), 404, json={"body": "intrus"})
    assert len(await rq.call("GET", url, rq.agent(AGENT))) == 2
    posted = [e for e in await rq.events_for(rid, 3) if e.type == rq_events.REQUEST_MESSAGE_POSTED]
    assert [e.data["author_role"] for e in posted] == ["agent", "staff"]
    assert "Bonjour" not in str(posted[0].data)  # the text stays in the service


async def test_access_rules_per_role(rq: RequestsApp) -> None:
    mine = (await rq.file(rq.agent(AGENT), atlas_id="strasbourg"))["request_id"]
    url = f"/v1/requests/{mine}"
    await rq.call("GET", url, rq.agent(AGENT))
    await rq.call("GET", url, rq.agent(OTHER), 404)
    await rq.call("GET", url, rq.staff("strasbourg"))
    await rq.call("GET", url, rq.manager("strasbourg"))
    await rq.call("GET", url, rq.staff("toulon"), 404)
    await rq.call("GET", url, rq.ops)
    # Lists are scoped the same way.
    agent_list = await rq.call("GET", "/v1/requests", rq.agent(OTHER))
    assert mine not in [r["request_id"] for r in agent_list["items"]]
    staff_list = await rq.call("GET", "/v1/requests", rq.staff("strasbourg"))
    assert {r["atlas_id"] for r in staff_list["items"]} == {"strasbourg"}
    await rq.call("GET", "/v1/requests?atlas_id=toulon", rq.staff("strasbourg"), 403)
    ops_list = await rq.call("GET", "/v1/requests?atlas_id=strasbourg", rq.ops)
    assert mine in [r["request_id"] for r in ops_list["items"]]
    # KPIs: managers of the space and ops; not staff, not other managers.
    await rq.call("GET", "/v1/spaces/strasbourg/kpis", rq.manager("strasbourg"))
    await rq.call("GET", "/v1/spaces/strasbourg/kpis", rq.ops)
    await rq.call("GET", "/v1/spaces/strasbourg/kpis", rq.staff("strasbourg"), 403)
    await rq.call("GET", "/v1/spaces/strasbourg/kpis", rq.manager("toulon"), 403)
    await rq.call("GET", "/v1/spaces/strasbourg/kpis", rq.agent(AGENT), 403)
    # Staff of another space may not move it, nor transfer it.
    await rq.move(mine, "en_instruction", rq.staff("toulon"), expect=404)
    anonymous = await rq.http.get(url)
    assert anonymous.status_code == 401


async def test_queue_filters_sorting_pagination(rq: RequestsApp) -> None:
    staff = rq.staff("saint-denis", "sd-1")
    await rq.call("PUT", "/v1/spaces/saint-denis/staff/sd-1", rq.manager("saint-denis"))
    ids = []
    for i, (channel, code) in enumerate(
        [("guichet", "LOG-001"), ("telephone", "LOG-003"), ("guichet", "LOG-003")] * 3
    ):
        body = await rq.file(
            staff, atlas_id="saint-denis", agent_id=f"20194000{i:02d}", channel=channel,
            prestation_code=code,
        )  # fmt: skip
        ids.append(body["request_id"])
    await rq.move(ids[0], "en_instruction", staff)
    await rq.call("POST", f"/v1/requests/{ids[1]}/assignment", staff, json={"assignee": "sd-1"})
    base = "/v1/requests"
    page1 = await rq.call("GET", f"{base}?page_size=4&sort=submitted_at", staff)
    page3 = await rq.call("GET", f"{base}?page_size=4&page=3&sort=submitted_at", staff)
    assert page1["total"] == 9
    assert [r["request_id"] for r in page1["items"]] == ids[:4]
    assert [r["request_id"] for r in page3["items"]] == ids[8:]
    newest = await rq.call("GET", f"{base}?page_size=1", staff)
    assert newest["items"][0]["request_id"] == ids[-1]
    by_channel = await rq.call("GET", f"{base}?channel=telephone", staff)
    assert by_channel["total"] == 3
    by_status = await rq.call("GET", f"{base}?status=en_instruction", staff)
    assert [r["request_id"] for r in by_status["items"]] == [ids[0]]
    by_prestation = await rq.call("GET", f"{base}?prestation_code=LOG-001&status=soumise", staff)
    assert by_prestation["total"] == 2
    by_assignee = await rq.call("GET", f"{base}?assignee=sd-1", staff)
    assert [r["request_id"] for r in by_assignee["items"]] == [ids[1]]
    unassigned = await rq.call("GET", f"{base}?assignee=none", staff)
    assert unassigned["total"] == 8
    at_risk = await rq.call("GET", f"{base}?sla_at_risk=true", staff)
    assert at_risk["total"] == 0  # nothing is near its deadline yet
    due_first = await rq.call("GET", f"{base}?sort=sla_due_at&page_size=9", staff)
    dues = [r["sla"]["due_at"] for r in due_first["items"]]
    assert dues == sorted(dues)
    await rq.call("GET", f"{base}?sort=agent_id", staff, 422)
    await rq.call("GET", f"{base}?page_size=1000", staff, 422)

    kpis = await rq.call("GET", "/v1/spaces/saint-denis/kpis", rq.manager("saint-denis"))
    assert kpis["backlog_total"] == 9
    assert kpis["backlog"]["en_instruction"] == 1
    assert kpis["channel_mix"] == {"guichet": 6, "telephone": 3}
    assert kpis["unassigned"] == 8
    assert kpis["first_response_hours_avg"] is not None

    response = await rq.http.get(
        "/v1/spaces/saint-denis/requests.csv", headers=staff, params={"status": ["soumise"]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 8
    assert {r["status"] for r in rows} == {"soumise"}
    assert rows[0]["id"] == ids[1]
    refused = await rq.http.get("/v1/spaces/saint-denis/requests.csv", headers=rq.staff("toulon"))
    assert refused.status_code == 403
    assert refused.json()["error"] == "NotAllowed"


@pytest.mark.parametrize("body", [{}, {"assignee": "", "auto": False}])
async def test_bad_assignment_bodies(rq: RequestsApp, body: dict[str, object]) -> None:
    created = await rq.file(rq.staff("brest"), atlas_id="brest", agent_id=AGENT, channel="guichet")
    response = await rq.http.post(
        f"/v1/requests/{created['request_id']}/assignment", headers=rq.staff("brest"), json=body
    )
    assert response.status_code == 422, response.text
