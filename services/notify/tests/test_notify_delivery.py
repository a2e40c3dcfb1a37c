"""Retries with backoff then the DLQ, replay by ops, SMTP pooling, quiet hours and the guards."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from notify_factories import NotifyHarness, SmtpSink, current_deliveries, free_port
from sqlalchemy.orm.attributes import set_committed_value

from atlas_notify.errors import IllegalTransition
from atlas_notify.notifications.models import Delivery, Notification
from atlas_notify.notifications.service import transition
from atlas_notify.notifications.states import ALLOWED, TERMINAL, Status, check_transition

AGENT = "2019123456"
EMAIL = "camille.martin@example.fr"


async def with_email(n: NotifyHarness, agent_id: str = AGENT, email: str = EMAIL) -> None:
    response = await n.client.put(f"/v1/contacts/{agent_id}", json={"email": email}, headers=n.ops)
    assert response.status_code == 200


def test_state_machine_allows_exactly_the_notify_edges() -> None:
    edges = {(a, b) for a, targets in ALLOWED.items() for b in targets}
    assert edges == {
        (Status.CREATED, Status.SENDING),
        (Status.CREATED, Status.SKIPPED),
        (Status.CREATED, Status.TECHNICAL_FAILURE),
        (Status.SENDING, Status.DELIVERED),
        (Status.SENDING, Status.TEMPORARY_FAILURE),
        (Status.SENDING, Status.PERMANENT_FAILURE),
        (Status.SENDING, Status.TECHNICAL_FAILURE),
    }
    for current in Status:
        for new in Status:
            if (current, new) in edges:
                check_transition(current, new)
            else:
                with pytest.raises(IllegalTransition):
                    check_transition(current, new)
    assert all(not ALLOWED[s] for s in TERMINAL)


async def test_terminal_deliveries_never_change_even_from_a_stale_copy(
    notify: NotifyHarness,
) -> None:
    sent = await notify.send("g1", recipient={"kind": "agent", "id": AGENT}, channels=["in_app"])
    await notify.wait_statuses(sent.json()["id"], {"in_app": "delivered"})
    async with notify.runtime.db.transaction() as session:
        (delivery,) = (await session.execute(Delivery.__table__.select())).all()  # type: ignore[attr-defined]
        row = await session.get(Delivery, delivery.id)
        notification = await session.get(Notification, delivery.notification_id)
        assert row is not None
        assert notification is not None
        with pytest.raises(IllegalTransition, match="terminal"):
            await transition(
                session, notify.runtime.outbox, notification, row, Status.PERMANENT_FAILURE, "x"
            )
        # A copy that still believes it is sending is refused by the compare-and-set.
        set_committed_value(row, "status", Status.SENDING.value)
        with pytest.raises(IllegalTransition, match="no longer sending"):
            await transition(
                session, notify.runtime.outbox, notification, row, Status.PERMANENT_FAILURE, "x"
            )
    (stored,) = await notify.deliveries()
    assert (stored.status, stored.reason) == ("delivered", "stored_in_inbox")


async def test_deferred_smtp_retries_then_dlq_then_ops_replay_delivers(
    notify: NotifyHarness, smtp_sink: SmtpSink
) -> None:
    await with_email(notify)
    smtp_sink.defer.add(EMAIL)
    sent = await notify.send("d1", recipient={"kind": "agent", "id": AGENT}, channels=["email"])
    nid = sent.json()["id"]
    found = await notify.wait_statuses(nid, {"email": "temporary_failure"})
    (failed,) = current_deliveries(found)
    assert failed["reason"] == "retries_exhausted"
    assert failed["attempts"] == 3
    assert failed["dead_lettered"] is True
    assert "451" in failed["detail"]
    dlq = await notify.client.get("/v1/dead-letters", headers=notify.ops)
    assert [d["id"] for d in dlq.json()] == [failed["id"]]

    refused = await notify.client.post(f"/v1/notifications/{nid}/replay", headers=notify.admin)
    assert refused.status_code == 403
    smtp_sink.defer.clear()
    replayed = await notify.client.post(f"/v1/notifications/{nid}/replay", headers=notify.ops)
    assert replayed.status_code == 200, replayed.text
    found = await notify.wait_statuses(nid, {"email": "delivered"})
    old, new = sorted(found["deliveries"], key=lambda d: d["generation"])
    assert (old["status"], old["reason"], old["dead_lettered"]) == (
        "temporary_failure",
        "retries_exhausted",
        False,
    )
    assert (new["generation"], new["status"]) == (2, "delivered")
    assert len(smtp_sink.messages_to(EMAIL)) == 1
    empty = await notify.client.post(f"/v1/notifications/{nid}/replay", headers=notify.ops)
    assert empty.status_code == 409
    assert empty.json()["error"] == "NothingToReplay"
    events = await notify.delivery_events(nid, count=6)
    assert [e["status"] for e in events] == [
        "created", "sending", "temporary_failure", "created", "sending", "delivered",
    ]  # fmt: skip


async def test_rejected_address_fails_permanently_without_retry(
    notify: NotifyHarness, smtp_sink: SmtpSink
) -> None:
    await with_email(notify, email="nobody@example.fr")
    smtp_sink.reject.add("nobody@example.fr")
    sent = await notify.send("r1", recipient={"kind": "agent", "id": AGENT}, channels=["email"])
    found = await notify.wait_statuses(sent.json()["id"], {"email": "permanent_failure"})
    (delivery,) = current_deliveries(found)
    assert delivery["reason"] == "smtp_recipient_refused"
    assert delivery["attempts"] == 1
    assert delivery["dead_lettered"] is False


async def test_unreachable_smtp_server_is_a_technical_failure(notify_factory) -> None:  # type: ignore[no-untyped-def]
    async with notify_factory(smtp_port=free_port()) as n:
        await with_email(n)
        sent = await n.send("t1", recipient={"kind": "agent", "id": AGENT}, channels=["email"])
        found = await n.wait_statuses(sent.json()["id"], {"email": "technical_failure"})
        (delivery,) = current_deliveries(found)
        assert delivery["reason"] == "retries_exhausted"
        assert delivery["dead_lettered"] is True
        assert "smtp_unavailable" in delivery["detail"]


async def test_smtp_connections_are_pooled(notify: NotifyHarness, smtp_sink: SmtpSink) -> None:
    for i in range(12):
        await with_email(notify, f"20190000{i:02d}", f"agent{i}@example.fr")
    ids = []
    for i in range(12):
        sent = await notify.send(
            f"pool-{i}", recipient={"kind": "agent", "id": f"20190000{i:02d}"}, channels=["email"]
        )
        ids.append(sent.json()["id"])
    for nid in ids:
        await notify.wait_statuses(nid, {"email": "delivered"})
    assert smtp_sink.count() == 12
    assert len(smtp_sink.peers) <= 4  # smtp_pool_size in the tests


def quiet_window_around_now() -> dict[str, str]:
    local = datetime.now(ZoneInfo("Europe/Paris"))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    return {"quiet_hours_start": start.strftime("%H:%M"), "quiet_hours_end": end.strftime("%H:%M")}


async def test_quiet_hours_defer_email_but_not_inbox_nor_critical(
    notify_factory,
    smtp_sink: SmtpSink,  # type: ignore[no-untyped-def]
) -> None:
    async with notify_factory(**quiet_window_around_now()) as n:
        await with_email(n)
        calm = await n.send(
            "q1", recipient={"kind": "agent", "id": AGENT}, channels=["email", "in_app"]
        )
        found = await n.wait_statuses(
            calm.json()["id"], {"in_app": "delivered", "email": "created"}
        )
        email = next(d for d in current_deliveries(found) if d["channel"] == "email")
        assert email["reason"] == "deferred_quiet_hours"
        not_before = datetime.fromisoformat(email["not_before"])
        assert timedelta(minutes=55) < not_before - datetime.now(UTC) < timedelta(minutes=61)
        alert = await n.send(
            "q2", recipient={"kind": "agent", "id": AGENT}, template="generic.alert",
            params={"titre": "Alerte", "message": "Mode crise"}, channels=["email"],
        )  # fmt: skip
        await n.wait_statuses(alert.json()["id"], {"email": "delivered"})
        assert [m["Subject"] for m in smtp_sink.messages_to(EMAIL)] == ["Alerte"]
        still = await n.notification(calm.json()["id"])
        assert {d["channel"]: d["status"] for d in current_deliveries(still)}["email"] == "created"


def test_quiet_hours_window_spans_midnight_in_paris() -> None:
    from datetime import time

    from atlas_notify.preferences.policy import QuietHours

    quiet = QuietHours(time(21), time(8), "Europe/Paris")
    paris = ZoneInfo("Europe/Paris")
    night = datetime(2027, 1, 15, 23, 30, tzinfo=paris)
    assert quiet.defer(night, category="general", channel="email") == datetime(
        2027, 1, 16, 8, 0, tzinfo=paris
    )
    early = datetime(2027, 7, 1, 6, 0, tzinfo=paris)  # summer time: 04:00 UTC
    assert quiet.defer(early, category="general", channel="sms") == datetime(
        2027, 7, 1, 8, 0, tzinfo=paris
    )
    assert quiet.defer(night, category="critical", channel="sms") is None
    assert quiet.defer(night, category="general", channel="in_app") is None
    assert (
        quiet.defer(datetime(2027, 1, 15, 12, 0, tzinfo=paris), category="x", channel="email")
        is None
    )
