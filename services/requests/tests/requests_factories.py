"""Starting the requests app in tests, seeding its catalog replica, reading its events."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import select

from atlas_events.auth import LocalSigningKey, Role
from atlas_events.cloudevents import CloudEvent, from_kafka, to_kafka
from atlas_events.kafka import ensure_topics
from atlas_events.registry import prefixed_registry
from atlas_events.schemas import catalog as cat
from atlas_events.schemas import requests as rq
from atlas_events.service import Runtime
from atlas_events.testing import wait_until
from atlas_requests.app import create
from atlas_requests.catalog.models import CatalogPrestation, CatalogSpace
from atlas_requests.config import RequestsSettings
from atlas_requests.requests.models import Request

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
EVENTS_TOPIC = "requests.requests.v1"
NOTIFY_TOPIC = "notify.commands.v1"

# code: (channels in the catalog's event words, essential, crisis_only, sla_days)
PRESTATIONS: dict[str, tuple[list[str], bool, bool, int]] = {
    "LOG-001": (["counter", "phone", "online"], True, False, 20),
    "LOG-003": (["counter", "phone"], True, False, 3),
    "ADM-003": (["counter", "phone"], False, False, 15),
    "CRI-010": (["phone", "online"], True, True, 3),
    "FAM-006": (["counter", "online"], False, False, 15),
    "MOB-002": (["counter", "phone", "online"], True, False, 20),
    "MOB-001": (["counter", "phone", "online"], True, False, 5),
}
# atlas_id: (commune_insee, departement, covered communes)
SPACES: dict[str, tuple[str, str, list[str]]] = {
    "toulon": ("83137", "83", ["83126", "83129"]),
    "brest": ("29019", "29", []),
    "strasbourg": ("67482", "67", []),
    "saint-denis": ("97411", "974", []),
    "lyon": ("69123", "69", []),
}


def prestation_event(code: str, version: int = 1, **changes: Any) -> CloudEvent:
    channels, essential, crisis_only, sla = PRESTATIONS.get(code, (["counter"], True, False, 5))
    data = {
        "code": code,
        "version": version,
        "title": f"Prestation {code}",
        "category": "logement",
        "provider": "Ministère des Armées",
        "channels": channels,
        "essential": essential,
        "crisis_only": crisis_only,
        "sla_days": sla,
        "updated_at": NOW.isoformat(),
        **changes,
    }
    return CloudEvent.create(cat.PRESTATION_SNAPSHOT, "urn:atlas:catalog", data)


def space_event(atlas_id: str, version: int = 1, crisis: bool = False) -> CloudEvent:
    commune, departement, covered = SPACES[atlas_id]
    data: dict[str, Any] = {
        "atlas_id": atlas_id,
        "name": f"ATLAS {atlas_id}",
        "commune_insee": commune,
        "region": "Région",
        "overseas": departement.startswith("97"),
        "communes_covered": covered,
        "crisis_mode": crisis,
        "version": version,
        "updated_at": NOW.isoformat(),
        "departement": departement,
    }
    if version > 1:
        data.update(crisis_reason="Confinement", changed_by="ops-1")
        return CloudEvent.create(cat.SPACE_CRISIS_MODE_CHANGED, "urn:atlas:catalog", data)
    return CloudEvent.create(cat.SPACE_SNAPSHOT, "urn:atlas:catalog", data)


def open_command(case_id: str, atlas_id: str = "toulon", **changes: Any) -> CloudEvent:
    data = {
        "case_id": case_id,
        "atlas_id": atlas_id,
        "prestation_code": "LOG-001",
        "agent_id": "2019000001",
        "channel": "anticipation",
        "title": "Recherche de logement – mutation",
        "mutation_id": case_id.split(":")[0],
        "case_kind": "logement",
        "requested_at": NOW.isoformat(),
        **changes,
    }
    return CloudEvent.create(rq.OPEN_REQUEST, "urn:atlas:mobility", data)


def close_command(case_id: str, outcome: str = "cancelled", **changes: Any) -> CloudEvent:
    data = {"case_id": case_id, "outcome": outcome, "requested_at": NOW.isoformat(), **changes}
    return CloudEvent.create(rq.CLOSE_REQUEST, "urn:atlas:mobility", data)


def case_commands(*commands: CloudEvent) -> CloudEvent:
    """A `apply_case_commands` batch of these single commands, in order (as mobility's HR stage
    sends them)."""
    items = []
    for command in commands:
        kind = "open_request" if command.type == rq.OPEN_REQUEST else "close_request"
        assert isinstance(command.data, dict)
        items.append({"command": kind, **command.data})
    return CloudEvent.create(rq.APPLY_CASE_COMMANDS, "urn:atlas:mobility", {"commands": items})


async def produce(bootstrap: str, topic: str, *events: CloudEvent, key: str = "k") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            message = to_kafka(event, key)
            await producer.send_and_wait(
                topic, key=message.key, value=message.value, headers=message.headers
            )
    finally:
        await producer.stop()


async def produce_raw(
    bootstrap: str, topic: str, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=b"bad", value=value, headers=headers)
    finally:
        await producer.stop()


class TopicWatcher:
    """Reads a shared topic from the beginning and files its events under a key of each."""

    def __init__(self, bootstrap: str, topic: str, key: Callable[[CloudEvent], str]) -> None:
        self.bootstrap, self.topic, self.key = bootstrap, topic, key
        self.seen: dict[str, list[CloudEvent]] = {}
        self._consumer: AIOKafkaConsumer | None = None

    async def wait_for(self, key: str, count: int, timeout: float = 20.0) -> list[CloudEvent]:
        async def probe() -> list[CloudEvent] | None:
            await self._drain()
            got = self.seen.get(key, [])
            return got if len(got) >= count else None

        return await wait_until(probe, timeout=timeout, interval=0.1)

    async def _drain(self) -> None:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                group_id=f"requests-test-{secrets.token_hex(4)}",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await self._consumer.start()
        batches = await self._consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                event = from_kafka(record.headers, record.value)
                self.seen.setdefault(self.key(event), []).append(event)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


@dataclass
class RequestsApp:
    """A started requests app with workers, its topics, an HTTP client and tokens."""

    app: FastAPI
    http: httpx.AsyncClient
    key: LocalSigningKey
    settings: RequestsSettings
    bootstrap: str
    watchers: list[TopicWatcher] = field(default_factory=list)

    def __post_init__(self) -> None:
        prefix = self.settings.topic_prefix
        self.request_events = TopicWatcher(
            self.bootstrap, prefix + EVENTS_TOPIC, lambda e: str(e.data.get("request_id"))
        )
        self.notifications = TopicWatcher(
            self.bootstrap, prefix + NOTIFY_TOPIC, lambda e: str(e.data.get("reference"))
        )
        self.watchers = [self.request_events, self.notifications]

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def token(self, sub: str, *roles: Role, atlas_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.issue(sub, list(roles), atlas_id=atlas_id)}"}

    def staff(self, atlas_id: str = "toulon", sub: str | None = None) -> dict[str, str]:
        return self.token(sub or f"staff-{atlas_id}-1", Role.STAFF, atlas_id=atlas_id)

    def manager(self, atlas_id: str = "toulon") -> dict[str, str]:
        return self.token(f"manager-{atlas_id}", Role.MANAGER, atlas_id=atlas_id)

    def agent(self, agent_id: str) -> dict[str, str]:
        return self.token(agent_id, Role.AGENT)

    @property
    def ops(self) -> dict[str, str]:
        return self.token("ops-1", Role.OPS)

    async def call(
        self, method: str, url: str, headers: Mapping[str, str], expect: int = 200, **kw: Any
    ) -> Any:
        response = await self.http.request(method, url, headers=headers, **kw)
        assert response.status_code == expect, f"{response.status_code}: {response.text}"
        return response.json() if response.content else None

    async def file(self, headers: Mapping[str, str], expect: int = 201, **body: Any) -> Any:
        body.setdefault("prestation_code", "LOG-001")
        body.setdefault("title", "Demande de logement")
        body.setdefault("atlas_id", "toulon")
        return await self.call("POST", "/v1/requests", headers, expect, json=body)

    async def move(
        self, request_id: str, to: str, headers: Mapping[str, str], expect: int = 200, **kw: Any
    ) -> Any:
        url = f"/v1/requests/{request_id}/transitions"
        return await self.call("POST", url, headers, expect, json={"to": to, **kw})

    async def produce(self, topic: str, *events: CloudEvent, key: str = "k") -> None:
        await produce(self.bootstrap, topic, *events, key=key)

    async def requests_for_case(self, case_id: str) -> list[Request]:
        async with self.runtime.db.transaction() as session:
            query = select(Request).where(Request.case_id == case_id)  # type: ignore[arg-type]
            return list((await session.execute(query)).scalars())

    async def events_for(self, request_id: str, count: int) -> list[CloudEvent]:
        """The first `count` events about one request on (this app's) requests.requests.v1."""
        return await self.request_events.wait_for(request_id, count)

    async def close(self) -> None:
        for watcher in self.watchers:
            await watcher.close()


async def replica_ready(app: RequestsApp, codes: list[str], spaces: list[str]) -> bool:
    async with app.runtime.db.transaction() as session:
        have_p = set((await session.execute(select(CatalogPrestation.code))).scalars())  # type: ignore[call-overload]
        have_s = set((await session.execute(select(CatalogSpace.atlas_id))).scalars())  # type: ignore[call-overload]
    return set(codes) <= have_p and set(spaces) <= have_s


@asynccontextmanager
async def started(
    database_url: str, key_path: Path, bootstrap: str, topics: Mapping[str, str], **extra: Any
) -> AsyncIterator[RequestsApp]:
    """The app on its own database and topics, workers on, the catalog replica seeded. What it
    publishes goes to topics of its own too (a prefix), not to the shared broker's real ones."""
    extra.setdefault("topic_prefix", f"t{secrets.token_hex(4)}.")
    await ensure_topics(bootstrap, prefixed_registry(extra["topic_prefix"]))
    settings = RequestsSettings(
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        auth_local_key_path=key_path,
        run_workers=True,
        relay_poll_seconds=0.2,
        prestations_topic=topics["prestations"],
        spaces_topic=topics["spaces"],
        commands_topic=topics["commands"],
        consumer_group_suffix=f".test-{secrets.token_hex(4)}",
        sla_check_seconds=0.2,
        log_json=False,
        **extra,
    )
    app = create(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            ra = RequestsApp(
                app, http, LocalSigningKey.load_or_create(key_path), settings, bootstrap
            )
            await ra.produce(topics["prestations"], *(prestation_event(c) for c in PRESTATIONS))
            await ra.produce(topics["spaces"], *(space_event(s) for s in SPACES))
            await wait_until(lambda: replica_ready(ra, list(PRESTATIONS), list(SPACES)), timeout=30)
            try:
                yield ra
            finally:
                await ra.close()


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
