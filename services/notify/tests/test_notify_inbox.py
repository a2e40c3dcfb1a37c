"""The in-app inbox and its server-sent events stream (over a real HTTP server), the digest."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import uvicorn
from notify_factories import NotifyHarness, SmtpSink, free_port

from atlas_events.testing import wait_until
from atlas_notify.dispatch.jobs import claim_daily

AGENT = "2019123456"


@asynccontextmanager
async def served(n: NotifyHarness) -> AsyncIterator[str]:
    """The already started app behind a real uvicorn server (SSE needs a streaming transport)."""
    port = free_port()
    app = n.client._transport.app  # type: ignore[attr-defined]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: asyncio.sleep(0, result=server.started), timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def read_events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and "data" in current:
            events.append(current)
            current = {}
            if len(events) == count:
                break
    return events


async def test_inbox_stream_list_and_mark_read(notify: NotifyHarness) -> None:
    async with served(notify) as base, httpx.AsyncClient(base_url=base, timeout=20) as http:
        headers = notify.agent(AGENT)
        async with http.stream(
            "GET", "/v1/inbox/stream", params={"poll": 0.05}, headers=headers
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            for i in (1, 2):
                sent = await notify.send(
                    f"in-{i}", recipient={"kind": "agent", "id": AGENT}, channels=["in_app"],
                    params={"titre": f"Titre {i}", "message": f"Message {i}"},
                )  # fmt: skip
                assert sent.status_code == 201
            first, second = await asyncio.wait_for(read_events(stream, 2), timeout=15)
        assert [e["event"] for e in (first, second)] == ["notification", "notification"]
        assert [e["data"]["title"] for e in (first, second)] == ["Titre 1", "Titre 2"]

        # A gateway that lost the connection resumes after the last id it saw.
        async with http.stream(
            "GET", "/v1/inbox/stream", params={"limit": 1, "poll": 0.05},
            headers={**headers, "Last-Event-ID": first["id"]},
        ) as resumed:  # fmt: skip
            (again,) = await asyncio.wait_for(read_events(resumed, 1), timeout=15)
        assert again["data"]["id"] == second["data"]["id"]

        other = await http.get(
            "/v1/inbox/stream", params={"recipient": AGENT}, headers=notify.agent("2019000009")
        )
        assert other.status_code == 403

    read = await notify.client.post(f"/v1/inbox/{first['data']['id']}/read", headers=headers)
    assert read.status_code == 200
    assert read.json()["read_at"] is not None
    unread = await notify.client.get("/v1/inbox", params={"unread": True}, headers=headers)
    assert [i["title"] for i in unread.json()] == ["Titre 2"]
    missing = await notify.client.post(
        f"/v1/inbox/{first['data']['id']}/read", headers=notify.agent("2019000009")
    )
    assert missing.status_code == 404
    assert missing.json()["error"] == "InboxItemNotFound"


async def test_space_inbox_is_shared_by_its_staff_only(notify: NotifyHarness) -> None:
    sent = await notify.send(
        "space-1", recipient={"kind": "space_staff", "id": "toulon"}, channels=["in_app"]
    )
    await notify.wait_statuses(sent.json()["id"], {"in_app": "delivered"})
    for sub in ("staff-toulon-01", "manager-toulon-01"):
        items = await notify.client.get("/v1/inbox", headers=notify.staff(sub))
        assert [i["notification_id"] for i in items.json()] == [sent.json()["id"]]
    brest = await notify.client.get("/v1/inbox", headers=notify.staff("staff-brest-01", "brest"))
    assert brest.json() == []
    foreign = await notify.send(
        "space-2", recipient={"kind": "space_staff", "id": "toulon"},
        headers=notify.staff("staff-brest-01", "brest"),
    )  # fmt: skip
    assert foreign.status_code == 403


async def test_daily_digest_gathers_staff_emails_into_one_per_person(
    notify: NotifyHarness, smtp_sink: SmtpSink
) -> None:
    ids = []
    for i in (1, 2):
        sent = await notify.send(
            f"dg-{i}", recipient={"kind": "space_staff", "id": "toulon"},
            params={"titre": f"Arrivée {i}", "message": f"Détail {i}"}, channels=["email"],
        )  # fmt: skip
        ids.append(sent.json()["id"])
        assert {d["reason"] for d in sent.json()["deliveries"]} == {"digest_pending"}
    assert smtp_sink.count() == 0
    run = await notify.client.post("/v1/ops/digests", headers=notify.ops)
    assert run.json() == {"emails": 2}
    for address in ("accueil.toulon@intradef.test", "responsable.toulon@intradef.test"):
        (digest,) = smtp_sink.messages_to(address)
        body = digest.get_payload(decode=True).decode()
        assert "2 notifications" in digest["Subject"]
        assert "Arrivée 1" in body
        assert "Arrivée 2" in body
    for nid in ids:
        found = await notify.notification(nid)
        assert {(d["status"], d["reason"]) for d in found["deliveries"]} == {
            ("delivered", "sent_in_digest")
        }
    again = await notify.client.post("/v1/ops/digests", headers=notify.ops)
    assert again.json() == {"emails": 0}
    refused = await notify.client.post("/v1/ops/digests", headers=notify.admin)
    assert refused.status_code == 403


async def test_the_automatic_digest_runs_once_a_day(notify: NotifyHarness) -> None:
    today = date(2027, 5, 3)
    assert await claim_daily(notify.runtime.db, "test_job", today) is True
    assert await claim_daily(notify.runtime.db, "test_job", today) is False
    assert await claim_daily(notify.runtime.db, "test_job", today + timedelta(days=1)) is True
