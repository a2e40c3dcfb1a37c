"""Direct sends through the API: real SMTP, states, events, idempotency, skips and scoping."""

from notify_factories import NotifyHarness, SmtpSink, current_deliveries

from atlas_events.auth import Role

AGENT = "2019123456"


async def set_contact(n: NotifyHarness, agent_id: str, **fields: str) -> None:
    response = await n.client.put(f"/v1/contacts/{agent_id}", json=fields, headers=n.ops)
    assert response.status_code == 200, response.text


async def test_email_and_inbox_are_delivered_over_real_smtp(
    notify: NotifyHarness, smtp_sink: SmtpSink
) -> None:
    await set_contact(notify, AGENT, email="camille.martin@example.fr")
    response = await notify.send(
        "k-1", recipient={"kind": "agent", "id": AGENT}, channels=["email", "in_app"]
    )
    assert response.status_code == 201, response.text
    nid = response.json()["id"]
    await notify.wait_statuses(nid, {"email": "delivered", "in_app": "delivered"})

    (message,) = smtp_sink.messages_to("camille.martin@example.fr")
    assert message["Subject"] == "Information"
    assert "Rendez-vous confirmé." in message.get_payload(decode=True).decode()
    events = await notify.delivery_events(nid, count=6)
    email = [
        (e["previous_status"], e["status"], e["reason"]) for e in events if e["channel"] == "email"
    ]
    assert email == [
        (None, "created", "accepted"),
        ("created", "sending", "dispatched"),
        ("sending", "delivered", "smtp_accepted"),
    ]
    assert all(e["reason"] for e in events)


async def test_same_idempotency_key_returns_the_same_notification(
    notify: NotifyHarness, smtp_sink: SmtpSink
) -> None:
    await set_contact(notify, AGENT, email="camille.martin@example.fr")
    first = await notify.send("same", recipient={"kind": "agent", "id": AGENT}, channels=["email"])
    again = await notify.send("same", recipient={"kind": "agent", "id": AGENT}, channels=["email"])
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    await notify.wait_statuses(first.json()["id"], {"email": "delivered"})

    other = await notify.send(
        "same", recipient={"kind": "agent", "id": AGENT}, channels=["email"],
        params={"titre": "Autre", "message": "Autre chose"},
    )  # fmt: skip
    assert other.status_code == 409
    assert other.json()["error"] == "IdempotencyConflict"
    assert len(smtp_sink.messages_to("camille.martin@example.fr")) == 1


async def test_concurrent_sends_with_one_key_make_one_notification(notify: NotifyHarness) -> None:
    import asyncio

    responses = await asyncio.gather(
        *(
            notify.send("race", recipient={"kind": "agent", "id": AGENT}, channels=["in_app"])
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 5 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(await notify.deliveries()) == 1


async def test_direct_send_needs_an_idempotency_key(notify: NotifyHarness) -> None:
    response = await notify.client.post(
        "/v1/notifications",
        json={"recipient": {"kind": "agent", "id": AGENT}, "template": "generic.message"},
        headers=notify.ops,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "IdempotencyKeyRequired"
    refused = await notify.send(
        "k", recipient={"kind": "agent", "id": AGENT}, headers=notify.agent(AGENT)
    )
    assert refused.status_code == 403


async def test_missing_variables_and_unknown_template_write_nothing(notify: NotifyHarness) -> None:
    missing = await notify.send(
        "m", recipient={"kind": "agent", "id": AGENT}, params={"titre": "Sans message"}
    )
    assert missing.status_code == 422
    assert missing.json()["error"] == "MissingVariables"
    assert missing.json()["detail"] == {"missing_variables": ["message"]}
    unknown = await notify.send("u", recipient={"kind": "agent", "id": AGENT}, template="no.such")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "TemplateNotFound"
    assert await notify.deliveries() == []


async def test_recipient_without_the_channel_is_skipped_with_its_reason(
    notify: NotifyHarness,
) -> None:
    response = await notify.send(
        "skip", recipient={"kind": "agent", "id": "2019000001"}, channels=["email", "sms", "in_app"]
    )
    assert response.status_code == 201, response.text
    found = await notify.wait_statuses(
        response.json()["id"], {"email": "skipped", "sms": "skipped", "in_app": "delivered"}
    )
    reasons = {d["channel"]: d["reason"] for d in current_deliveries(found)}
    assert reasons == {
        "email": "no_email_address",
        "sms": "no_phone_number",
        "in_app": "stored_in_inbox",
    }
    assert found["status"] == "delivered"


async def test_an_agent_reads_only_their_own_notifications(notify: NotifyHarness) -> None:
    mine = await notify.send("a", recipient={"kind": "agent", "id": AGENT}, channels=["in_app"])
    await notify.send("b", recipient={"kind": "agent", "id": "2019000002"}, channels=["in_app"])
    own = await notify.client.get(
        "/v1/notifications", params={"recipient": AGENT}, headers=notify.agent(AGENT)
    )
    assert own.status_code == 200
    assert [n["id"] for n in own.json()] == [mine.json()["id"]]
    assert own.json()[0]["status"] in {"created", "sending", "delivered"}
    other = await notify.client.get(
        "/v1/notifications", params={"recipient": "2019000002"}, headers=notify.agent(AGENT)
    )
    assert other.status_code == 403
    assert other.json()["error"] == "Forbidden"
    hidden = await notify.client.get(
        f"/v1/notifications/{mine.json()['id']}", headers=notify.agent("2019000002")
    )
    assert hidden.status_code == 404
    every = await notify.client.get(
        "/v1/notifications", params={"recipient": "2019000002"}, headers=notify.ops
    )
    assert len(every.json()) == 1
    staff = notify.token("staff-brest-01", Role.STAFF, atlas_id="brest")
    refused = await notify.client.get(
        "/v1/notifications", params={"recipient": "toulon", "kind": "space_staff"}, headers=staff
    )
    assert refused.status_code == 403


async def test_opt_out_skips_and_critical_bypasses_it(notify: NotifyHarness) -> None:
    await set_contact(notify, AGENT, email="camille.martin@example.fr")
    prefs = await notify.client.put(
        "/v1/preferences",
        json=[{"category": "general", "channel": "email", "enabled": False}],
        headers=notify.agent(AGENT),
    )
    assert prefs.status_code == 200, prefs.text
    quiet = await notify.send("p1", recipient={"kind": "agent", "id": AGENT}, channels=["email"])
    found = await notify.wait_statuses(quiet.json()["id"], {"email": "skipped"})
    assert current_deliveries(found)[0]["reason"] == "preference_opt_out"
    await notify.client.put(
        "/v1/preferences",
        json=[{"category": "critical", "channel": "email", "enabled": False}],
        headers=notify.agent(AGENT),
    )
    alert = await notify.send(
        "p2", recipient={"kind": "agent", "id": AGENT}, template="generic.alert",
        params={"titre": "Alerte", "message": "Évacuation"}, channels=["email"],
    )  # fmt: skip
    await notify.wait_statuses(alert.json()["id"], {"email": "delivered"})


async def test_scheduled_send_can_be_cancelled_before_sending(notify: NotifyHarness) -> None:
    from datetime import UTC, datetime, timedelta

    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    response = await notify.send(
        "s1", recipient={"kind": "agent", "id": AGENT}, channels=["in_app"], send_at=later
    )
    (delivery,) = response.json()["deliveries"]
    assert (delivery["status"], delivery["reason"]) == ("created", "scheduled")
    cancelled = await notify.client.post(
        f"/v1/notifications/{response.json()['id']}/cancel", headers=notify.ops
    )
    assert cancelled.status_code == 200, cancelled.text
    (delivery,) = cancelled.json()["deliveries"]
    assert (delivery["status"], delivery["reason"]) == ("skipped", "cancelled")
    again = await notify.client.post(
        f"/v1/notifications/{response.json()['id']}/cancel", headers=notify.ops
    )
    assert again.status_code == 409
    assert again.json()["error"] == "NotCancellable"

    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    due = await notify.send(
        "s2", recipient={"kind": "agent", "id": AGENT}, channels=["in_app"], send_at=soon
    )
    found = await notify.wait_statuses(due.json()["id"], {"in_app": "delivered"})
    assert datetime.fromisoformat(
        current_deliveries(found)[0]["completed_at"]
    ) >= datetime.fromisoformat(soon)


async def test_simulated_recipients_deliver_or_fail_as_named(notify: NotifyHarness) -> None:
    outcomes = {}
    for agent_id, expected in (
        ("0000000001", "delivered"),
        ("0000000002", "permanent_failure"),
        ("0000000003", "temporary_failure"),
    ):
        response = await notify.send(
            f"sim-{agent_id}",
            recipient={"kind": "agent", "id": agent_id},
            channels=["email", "sms"],
        )
        found = await notify.wait_statuses(
            response.json()["id"], {"email": expected, "sms": expected}
        )
        outcomes[agent_id] = {d["channel"]: d for d in current_deliveries(found)}
    assert outcomes["0000000001"]["email"]["reason"] == "simulated_delivered"
    assert outcomes["0000000002"]["sms"]["attempts"] == 1
    assert outcomes["0000000003"]["email"]["attempts"] == 3  # retry_max_attempts in the tests
    assert outcomes["0000000003"]["email"]["dead_lettered"] is True


async def test_retention_purges_content_but_keeps_idempotency(
    notify_factory,  # type: ignore[no-untyped-def]
) -> None:
    async with notify_factory(retention_days={"email": 0, "sms": 0, "in_app": 30}) as n:
        await set_contact(n, AGENT, email="camille.martin@example.fr")
        sent = await n.send(
            "r1", recipient={"kind": "agent", "id": AGENT}, channels=["email", "in_app"]
        )
        await n.wait_statuses(sent.json()["id"], {"email": "delivered", "in_app": "delivered"})
        purged = await n.client.post("/v1/ops/retention/purge", headers=n.ops)
        assert purged.json() == {"purged": 1}
        rows = {d.channel: d for d in await n.deliveries()}
        assert rows["email"].body is None
        assert rows["email"].address is None
        assert rows["email"].purged_at is not None
        assert rows["email"].status == "delivered"
        assert rows["in_app"].body is not None  # in-app is kept 30 days
        again = await n.send(
            "r1", recipient={"kind": "agent", "id": AGENT}, channels=["email", "in_app"]
        )
        assert again.status_code == 200


async def test_local_mode_on_sqlite_sends_and_stays_idempotent(
    tmp_path,  # type: ignore[no-untyped-def]
    kafka_bootstrap: str,
    smtp_sink: SmtpSink,
) -> None:
    from notify_factories import start_notify

    async with start_notify(
        tmp_path=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/notify.db",
        kafka_bootstrap=kafka_bootstrap,
        smtp_port=smtp_sink.port,
    ) as n:
        await set_contact(n, AGENT, email="camille.martin@example.fr")
        first = await n.send("lite", recipient={"kind": "agent", "id": AGENT})
        again = await n.send("lite", recipient={"kind": "agent", "id": AGENT})
        assert (first.status_code, again.status_code) == (201, 200)
        await n.wait_statuses(first.json()["id"], {"email": "delivered", "in_app": "delivered"})
        assert len(smtp_sink.messages_to("camille.martin@example.fr")) == 1
