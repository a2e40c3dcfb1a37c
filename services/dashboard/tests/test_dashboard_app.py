"""The dashboard on the real broker: its own prefixed topics replayed, the JSON and the page."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from dashboard_factories import (
    case_closed,
    delivery,
    dossier,
    event,
    space,
    status_changed,
    submitted,
)
from pydantic import BaseModel

from atlas_dashboard.app import create
from atlas_dashboard.config import DashboardSettings
from atlas_events.auth import LocalSigningKey, Role
from atlas_events.cloudevents import to_kafka
from atlas_events.consumer import DLQ_CONSUMER, DLQ_REASON
from atlas_events.kafka import ensure_topics
from atlas_events.registry import REGISTRY, prefixed_registry
from atlas_events.schemas import catalog, mobility, notify, requests

Client = httpx.AsyncClient


class Harness:
    """A running dashboard over a fresh set of prefixed topics, and a producer onto them."""

    def __init__(self, client: Client, key: LocalSigningKey, prefix: str, bootstrap: str) -> None:
        self.client = client
        self.key = key
        self.prefix = prefix
        self.bootstrap = bootstrap

    def auth(self, sub: str, *roles: Role, atlas_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.issue(sub, list(roles), atlas_id=atlas_id)}"}

    async def publish(self, *items: tuple[str, BaseModel]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            for ce_type, data in items:
                topic, cloud_event = event(ce_type, data)
                message = to_kafka(cloud_event, key="k")
                await producer.send_and_wait(
                    self.prefix + topic, message.value, key=message.key, headers=message.headers
                )
        finally:
            await producer.stop()

    async def send_raw(
        self, topic: str, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(self.prefix + topic, value, headers=headers or [])
        finally:
            await producer.stop()

    async def overview(self, **params: str) -> dict[str, Any]:
        response = await self.client.get(
            "/v1/overview", params=params, headers=self.auth("ops-1", Role.OPS)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_for(
        self, what: str, probe: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = await self.overview()
            if probe(body):
                return body
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; last overview: {body}")
            await asyncio.sleep(0.2)


@pytest.fixture
async def dashboard(
    kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    stack: list[Any] = []

    async def start(**settings: Any) -> Harness:
        prefix = f"dash{secrets.token_hex(3)}."
        await ensure_topics(kafka_bootstrap, prefixed_registry(prefix))
        key_path = tmp_path / "keys" / "jwt.pem"
        app = create(
            DashboardSettings(
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'dashboard.db'}",
                kafka_bootstrap=kafka_bootstrap,
                auth_local_key_path=key_path,
                topic_prefix=prefix,
                kafka_poll_seconds=0.5,
                **settings,
            )
        )
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        stack.append(client)
        return Harness(client, LocalSigningKey.load_or_create(key_path), prefix, kafka_bootstrap)

    yield start
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)


async def _commit_start(bootstrap: str, group: str, topic: str, partitions: int) -> None:
    """Commit offset 0 on every partition for `group`: a consumer that has read nothing yet."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.commit({tp: OffsetAndMetadata(0, "") for tp in tps})
    finally:
        await consumer.stop()


async def test_figures_from_the_topics_and_kafka_admin(
    dashboard: Callable[..., Awaitable[Harness]],
) -> None:
    h = await dashboard()
    toulon = "toulon"
    crisis = space(
        "brest", "ATLAS de Brest", crisis=True, crisis_scope="space", changed_by="ops-1",
        crisis_reason="Tempête",
    )  # fmt: skip
    await h.publish(
        (catalog.SPACE_SNAPSHOT, space(toulon, "ATLAS de Toulon")),
        (catalog.SPACE_CRISIS_MODE_CHANGED, crisis),
        (mobility.DOSSIER_OPENED, dossier("M-1", toulon, 1)),
        (mobility.DOSSIER_OPENED, dossier("M-2", toulon, 2)),
        (mobility.LOGEMENT_CASE_CLOSED, case_closed("M-1", "logement", toulon)),
        (requests.REQUEST_SUBMITTED, submitted("r-1", toulon, due_in=timedelta(days=-1))),
        (requests.REQUEST_SUBMITTED, submitted("r-2", toulon, due_in=timedelta(days=2))),
        (requests.REQUEST_STATUS_CHANGED, status_changed("r-2", toulon, "soumise", "terminee")),
        (notify.DELIVERY_STATUS_CHANGED, delivery("email", "delivered")),
        (notify.DELIVERY_STATUS_CHANGED, delivery("sms", "permanent_failure")),
    )
    # A record that is no CloudEvent: the dashboard skips it (the owner's consumers DLQ it).
    await h.send_raw("requests.requests.v1", b"not json")
    # A dead letter from a consumer, and a group that has not read the requests topic to the end.
    await h.send_raw(
        "requests.requests.v1.dlq",
        b"{}",
        [(DLQ_CONSUMER, b"notify.rules"), (DLQ_REASON, b"ValidationError: agent_id")],
    )
    requests_topic = REGISTRY.topic("requests.requests.v1")
    await _commit_start(
        h.bootstrap, f"{h.prefix}group", h.prefix + requests_topic.name, requests_topic.partitions
    )

    body = await h.wait_for(
        "every figure",
        lambda b: (
            b["events_applied"] >= 10
            and b["events_skipped"] == 1
            and any(row["lag"] > 0 for row in b["kafka"]["lag"])
            and any(d["messages"] for d in b["kafka"]["dlq"])
        ),
    )
    assert body["caught_up"] is True
    [arrivals] = body["arrivals"]
    assert (arrivals["atlas_id"], arrivals["name"], arrivals["total"]) == (
        toulon,
        "ATLAS de Toulon",
        2,
    )
    assert [m["arrivals"] for m in arrivals["months"]] == [0, 1, 1, 0, 0, 0]
    assert arrivals["cases"]["logement"] == {"clos": 1, "ouvert": 1}
    [queue] = body["requests"]
    assert (queue["backlog"], queue["overdue"], queue["sla_met"], queue["sla_missed"]) == (
        1,
        1,
        1,
        1,
    )
    channels = {c["channel"]: c for c in body["notifications"]["channels"]}
    assert channels["email"]["delivered"] == 1
    assert channels["sms"]["failed"] == 1
    assert body["crisis"]["national"] is False
    assert [(s["atlas_id"], s["reason"]) for s in body["crisis"]["spaces"]] == [
        ("brest", "Tempête")
    ]
    [lag] = [row for row in body["kafka"]["lag"] if row["group"] == f"{h.prefix}group"]
    assert (lag["topic"], lag["partitions"], lag["committed"]) == ("requests.requests.v1", 6, 0)
    assert lag["lag"] == lag["end"] == 4  # three requests events and the invalid record
    dlq = {d["topic"]: d["messages"] for d in body["kafka"]["dlq"]}
    assert dlq["requests.requests.v1.dlq"] == 1
    assert dlq["notify.deliveries.v1.dlq"] == 0
    assert body["dlq_by_consumer"] == [
        {
            "topic": "requests.requests.v1.dlq",
            "consumer": "notify.rules",
            "messages": 1,
            "last_reason": "ValidationError: agent_id",
        }
    ]

    # The page (public in local mode) shows the same figures, in French.
    page = await h.client.get("/")
    assert page.status_code == 200
    html = page.text
    assert 'lang="fr"' in html
    assert "Arrivées prévues par espace" in html
    assert 'data-atlas-id="toulon"' in html
    assert "Tempête" in html
    assert "notify.rules" in html

    # Metrics for Grafana.
    metrics = (await h.client.get("/metrics")).text
    assert 'atlas_dashboard_arrivals{atlas_id="toulon"' in metrics
    assert 'atlas_dashboard_dlq_messages{topic="requests.requests.v1.dlq"} 1.0' in metrics


async def test_access_json_needs_a_token_and_staff_see_their_own_space(
    dashboard: Callable[..., Awaitable[Harness]],
) -> None:
    h = await dashboard(page_public=False)
    await h.publish(
        (mobility.DOSSIER_OPENED, dossier("M-1", "toulon", 1)),
        (mobility.DOSSIER_OPENED, dossier("M-2", "brest", 1)),
    )
    await h.wait_for("two dossiers", lambda b: len(b["arrivals"]) == 2)

    anonymous = await h.client.get("/v1/overview")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "NotAuthenticated"
    assert (await h.client.get("/")).status_code == 401  # page_public off: a token is needed
    agent = await h.client.get("/v1/overview", headers=h.auth("2019123456", Role.AGENT))
    assert agent.status_code == 403
    assert agent.json()["error"] == "Forbidden"

    manager = h.auth("manager-toulon", Role.MANAGER, atlas_id="toulon")
    own = await h.client.get("/v1/overview", headers=manager)
    assert own.status_code == 200, own.text
    assert [a["atlas_id"] for a in own.json()["arrivals"]] == ["toulon"]
    other = await h.client.get("/v1/overview", params={"espace": "brest"}, headers=manager)
    assert other.status_code == 403
    assert "toulon" in other.json()["detail"]

    bad = await h.client.get(
        "/v1/overview", params={"espace": "../etc"}, headers=h.auth("ops-1", Role.OPS)
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "query.espace"
    one = await h.overview(espace="brest")
    assert [a["atlas_id"] for a in one["arrivals"]] == ["brest"]
    page = await h.client.get("/", headers=h.auth("ops-1", Role.OPS), params={"espace": "brest"})
    assert page.status_code == 200
    assert 'data-atlas-id="brest"' in page.text
    assert 'data-atlas-id="toulon"' not in page.text


@pytest.mark.parametrize("public", [True, False])
async def test_the_openapi_says_whether_the_page_needs_a_token(
    dashboard: Callable[..., Awaitable[Harness]], public: bool
) -> None:
    # Found by the API fuzzing: the page was documented behind the bearer scheme and answered
    # 200 without a token in local mode.
    h = await dashboard(page_public=public)
    page = (await h.client.get("/openapi.json")).json()["paths"]["/"]["get"]
    assert ("security" in page) is not public
    assert ("401" in page["responses"]) is not public
    assert (await h.client.get("/")).status_code == (200 if public else 401)
