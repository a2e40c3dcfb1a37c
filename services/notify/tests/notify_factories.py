"""Helpers of the notify tests: SMTP sink, fake SMS providers, the started app and its client."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from sqlalchemy import select

from atlas_events.auth import LocalSigningKey, Role
from atlas_events.cloudevents import CloudEvent, from_kafka, to_kafka
from atlas_events.kafka import ensure_topics
from atlas_events.registry import TopicRegistry, prefixed_registry
from atlas_events.service import Runtime
from atlas_events.testing import wait_until
from atlas_notify.app import create
from atlas_notify.config import NotifySettings
from atlas_notify.notifications.models import Delivery
from atlas_notify.topics import COMMAND_TOPIC, DELIVERIES_TOPIC, EVENT_TOPICS

STAFF_DIRECTORY = {
    "toulon": [
        {
            "staff_id": "staff-toulon-01",
            "display_name": "Accueil Toulon",
            "email": "accueil.toulon@intradef.test",
            "phone": "+33494000001",
            "digest": True,
        },
        {
            "staff_id": "manager-toulon-01",
            "display_name": "Responsable Toulon",
            "email": "responsable.toulon@intradef.test",
            "digest": True,
        },
    ],
    "brest": [],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- SMTP ---------------------------------------------------------------------------------


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.sink.reject:
            return "550 5.1.1 No such user"
        if address in self.sink.defer:
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.sink.lock:
            self.sink.peers.add(session.peer)
            for rcpt in envelope.rcpt_tos:
                self.sink.received.append((rcpt, envelope.content))
        return "250 Message accepted for delivery"


class SmtpSink:
    """A real SMTP server (aiosmtpd) in its own thread; `defer`/`reject` steer RCPT answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, bytes]] = []
        self.peers: set[tuple[str, int]] = set()
        self.defer: set[str] = set()
        self.reject: set[str] = set()
        self.lock = threading.Lock()
        self.controller = Controller(_SinkHandler(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def messages_to(self, address: str) -> list[Message]:
        with self.lock:
            return [message_from_bytes(raw) for rcpt, raw in self.received if rcpt == address]

    def count(self) -> int:
        with self.lock:
            return len(self.received)


# ---- SMS ----------------------------------------------------------------------------------


@dataclass
class FakeSmsProvider:
    """An SMS aggregator's HTTP API on loopback; `mode` decides its answers."""

    name: str
    mode: str = "ok"  # ok | error (503) | reject (400) | temporary
    calls: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body)
        if self.mode == "error":
            return web.json_response({"error": "unavailable"}, status=503)
        if self.mode == "reject":
            return web.json_response({"error": "invalid_number"}, status=400)
        status = "temporary_failure" if self.mode == "temporary" else "delivered"
        return web.json_response(
            {"id": f"{self.name}-{len(self.calls)}", "status": status}, status=201
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# ---- the app ------------------------------------------------------------------------------


@dataclass
class NotifyHarness:
    """The started app: an HTTP client, tokens, the topics and database helpers."""

    client: httpx.AsyncClient
    runtime: Runtime
    key: LocalSigningKey
    prefix: str
    bootstrap: str

    def token(self, sub: str, *roles: Role, atlas_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.issue(sub, roles, atlas_id=atlas_id)}"}

    @property
    def ops(self) -> dict[str, str]:
        return self.token("ops-1", Role.OPS)

    @property
    def admin(self) -> dict[str, str]:
        return self.token("admin-1", Role.ADMIN)

    def agent(self, agent_id: str) -> dict[str, str]:
        return self.token(agent_id, Role.AGENT)

    def staff(self, sub: str = "staff-toulon-01", atlas_id: str = "toulon") -> dict[str, str]:
        return self.token(sub, Role.STAFF, atlas_id=atlas_id)

    def topic(self, name: str) -> str:
        return self.prefix + name

    async def send(
        self,
        key: str,
        *,
        recipient: Mapping[str, str],
        template: str = "generic.message",
        params: Mapping[str, str] | None = None,
        channels: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "recipient": dict(recipient),
            "template": template,
            "params": dict(params or {"titre": "Information", "message": "Rendez-vous confirmé."}),
            **extra,
        }
        if channels is not None:
            body["channels"] = channels
        return await self.client.post(
            "/v1/notifications",
            json=body,
            headers={**(headers or self.ops), "Idempotency-Key": key},
        )

    async def notification(self, notification_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/notifications/{notification_id}", headers=self.ops)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def wait_statuses(
        self, notification_id: str, expected: Mapping[str, str], timeout: float = 15.0
    ) -> dict[str, Any]:
        """Wait until each channel's current delivery has the expected status."""

        async def probe() -> dict[str, Any] | None:
            found = await self.notification(notification_id)
            current = {d["channel"]: d["status"] for d in _current(found["deliveries"])}
            return found if all(current.get(c) == s for c, s in expected.items()) else None

        return await wait_until(probe, timeout=timeout)

    async def deliveries(self) -> list[Delivery]:
        async with self.runtime.db.transaction() as session:
            return list(await session.scalars(select(Delivery)))

    async def produce(self, topic: str, *events: CloudEvent, key: str = "k") -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            for event in events:
                message = to_kafka(event, key)
                await producer.send_and_wait(
                    self.topic(topic), key=message.key, value=message.value,
                    headers=message.headers,
                )  # fmt: skip
        finally:
            await producer.stop()

    async def produce_raw(self, topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(self.topic(topic), value=value, headers=headers)
        finally:
            await producer.stop()

    async def delivery_events(self, notification_id: str, count: int) -> list[dict[str, Any]]:
        """Read notify.deliveries.v1 until `count` events of this notification arrived."""
        collected: list[dict[str, Any]] = []

        async def read() -> list[dict[str, Any]] | None:
            from aiokafka import AIOKafkaConsumer

            consumer = AIOKafkaConsumer(
                self.topic(DELIVERIES_TOPIC),
                bootstrap_servers=self.bootstrap,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await consumer.start()
            try:
                collected.clear()
                batches = await consumer.getmany(timeout_ms=1000, max_records=10000)
                for records in batches.values():
                    for record in records:
                        event = from_kafka(record.headers or [], record.value)
                        if event.data["notification_id"] == notification_id:
                            collected.append(event.data)
            finally:
                await consumer.stop()
            return list(collected) if len(collected) >= count else None

        return await wait_until(read, timeout=20, interval=0.2)


def _current(deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest generation per (channel, target)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for d in deliveries:
        key = (d["channel"], d["target"])
        if key not in latest or d["generation"] > latest[key]["generation"]:
            latest[key] = d
    return list(latest.values())


def current_deliveries(notification: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _current(list(notification["deliveries"]))


def test_settings(
    *,
    tmp_path: Path,
    database_url: str,
    kafka_bootstrap: str,
    prefix: str,
    **overrides: Any,
) -> NotifySettings:
    directory = tmp_path / f"staff-{prefix}.json"
    directory.write_text(json.dumps(STAFF_DIRECTORY))
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap": kafka_bootstrap,
        "auth_local_key_path": tmp_path / "keys" / "jwt.pem",
        "topic_prefix": prefix,
        "smtp_pool_size": 4,
        "retry_max_attempts": 3,
        "retry_backoff_seconds": 0.05,
        "retry_backoff_max_seconds": 0.2,
        "dispatch_poll_seconds": 0.05,
        "relay_poll_seconds": 0.2,
        "digest_auto": False,
        "staff_directory_path": directory,
        "log_json": False,
        "log_level": "WARNING",
        # Quiet hours off unless a test sets them: the suite must pass at any hour.
        "quiet_hours_start": "00:00",
        "quiet_hours_end": "00:00",
    }
    values.update(overrides)
    return NotifySettings(**values)


async def create_topics(bootstrap: str, prefix: str) -> None:
    registry = prefixed_registry(prefix)
    wanted = {prefix + t for t in (*EVENT_TOPICS, COMMAND_TOPIC, DELIVERIES_TOPIC)}
    await ensure_topics(bootstrap, TopicRegistry(t for t in registry.topics() if t.name in wanted))


@asynccontextmanager
async def start_notify(
    *, tmp_path: Path, database_url: str, kafka_bootstrap: str, **overrides: Any
) -> AsyncIterator[NotifyHarness]:
    prefix = f"t{secrets.token_hex(4)}."
    await create_topics(kafka_bootstrap, prefix)
    settings = test_settings(
        tmp_path=tmp_path,
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        prefix=prefix,
        **overrides,
    )
    app = create(settings)
    key = LocalSigningKey.load_or_create(settings.auth_local_key_path or tmp_path / "k.pem")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
            runtime: Runtime = app.state.runtime
            yield NotifyHarness(client, runtime, key, prefix, kafka_bootstrap)


async def settle(seconds: float = 0.3) -> None:
    """Let background loops run a few times where a test checks that nothing more happens."""
    await asyncio.sleep(seconds)
