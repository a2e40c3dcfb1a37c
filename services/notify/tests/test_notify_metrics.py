"""The delivery-outcome counter behind the notification failure-rate alert, read from `/metrics`."""

from __future__ import annotations

import pytest
from notify_factories import FakeSmsProvider, NotifyHarness
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from atlas_notify.notifications.models import Delivery, Notification
from atlas_notify.notifications.service import transition
from atlas_notify.notifications.states import Status

WITH_CONTACT = "2019700001"
WITHOUT_CONTACT = "2019700002"

Samples = dict[tuple[str, str], float]


async def _deliveries_total(n: NotifyHarness) -> Samples:
    response = await n.client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.labels["channel"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "atlas_notify_deliveries_total"
    }


def _delta(after: Samples, before: Samples) -> Samples:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


async def test_final_statuses_are_counted_by_channel(
    notify_factory,
    sms_pair: tuple[FakeSmsProvider, FakeSmsProvider],  # type: ignore[no-untyped-def]
) -> None:
    primary, backup = sms_pair
    primary.mode = "reject"  # a number no provider takes: a permanent failure, no failover
    providers = [{"name": p.name, "url": p.url} for p in (primary, backup)]
    async with notify_factory(sms_providers=providers) as n:
        before = await _deliveries_total(n)
        contact = {"email": "camille.martin@example.fr", "phone": "+33612345678"}
        response = await n.client.put(f"/v1/contacts/{WITH_CONTACT}", json=contact, headers=n.ops)
        assert response.status_code == 200, response.text
        sent = await n.send(
            "m1",
            recipient={"kind": "agent", "id": WITH_CONTACT},
            channels=["email", "sms", "in_app"],
        )
        assert sent.status_code == 201, sent.text
        unreachable = await n.send(
            "m2", recipient={"kind": "agent", "id": WITHOUT_CONTACT}, channels=["email"]
        )
        assert unreachable.status_code == 201, unreachable.text
        await n.wait_statuses(
            sent.json()["id"],
            {"email": "delivered", "sms": "permanent_failure", "in_app": "delivered"},
        )
        await n.wait_statuses(unreachable.json()["id"], {"email": "skipped"})
        assert _delta(await _deliveries_total(n), before) == {
            ("email", "delivered"): 1,
            ("sms", "permanent_failure"): 1,
            ("in_app", "delivered"): 1,
            ("email", "skipped"): 1,
        }


async def test_a_rolled_back_outcome_is_not_counted(notify_factory) -> None:  # type: ignore[no-untyped-def]
    async with notify_factory() as n:
        sent = await n.send(
            "r1", recipient={"kind": "agent", "id": WITHOUT_CONTACT}, channels=["in_app"]
        )
        assert sent.status_code == 201, sent.text
        await n.wait_statuses(sent.json()["id"], {"in_app": "delivered"})
        before = await _deliveries_total(n)

        # An outcome whose transaction fails afterwards: the row keeps its status, no count.
        created = await n.send(
            "r2",
            recipient={"kind": "agent", "id": WITHOUT_CONTACT},
            channels=["in_app"],
            send_at="2099-01-01T00:00:00Z",
        )
        assert created.status_code == 201, created.text
        nid = created.json()["id"]

        async def fail_after_the_transition() -> None:
            async with n.runtime.db.transaction() as session:
                query = select(Delivery).where(Delivery.notification_id == nid)  # type: ignore[arg-type]
                delivery = (await session.scalars(query)).one()
                notification = await session.get(Notification, nid)
                assert notification is not None
                await transition(
                    session, n.runtime.outbox, notification, delivery, Status.SKIPPED, "test"
                )
                raise RuntimeError("the handler failed after the transition")

        with pytest.raises(RuntimeError):
            await fail_after_the_transition()
        assert _delta(await _deliveries_total(n), before) == {}
        async with n.runtime.db.transaction() as session:
            delivery = (
                await session.scalars(select(Delivery).where(Delivery.notification_id == nid))  # type: ignore[arg-type]
            ).one()
            assert delivery.status == Status.CREATED
            notification = await session.get(Notification, nid)
            assert notification is not None
            await transition(
                session, n.runtime.outbox, notification, delivery, Status.SKIPPED, "test"
            )
        assert _delta(await _deliveries_total(n), before) == {("in_app", "skipped"): 1}
