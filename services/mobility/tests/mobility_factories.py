"""Factories and helpers of the mobility tests: HR events, a running service, topic readers."""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI

from atlas_events.auth import LocalSigningKey, Role
from atlas_events.cloudevents import CloudEvent, from_kafka, to_kafka, to_structured
from atlas_events.schemas import hr, requests
from atlas_events.testing import wait_until
from atlas_mobility.app import create
from atlas_mobility.config import MobilitySettings
from atlas_mobility.topics import Topics

HR_SOURCE = "urn:atlas:rh:sirh-terre"
TOULON = "ATLAS-83137-TOULON"
BREST = "ATLAS-29019-BREST"
_counter = itertools.count(1)


def new_ids() -> tuple[str, str]:
    """A fresh (mutation_id, agent_id) pair."""
    n = next(_counter)
    mutation_id = f"TEST-{secrets.token_hex(3).upper()}-{n:05d}"
    agent_id = f"{secrets.randbelow(10**9):09d}{n % 10}"
    return mutation_id, agent_id


def snapshot(
    mutation_id: str,
    agent_id: str,
    *,
    revision: int = 1,
    destination: str = "83137",
    origin: str | None = "56121",
    report_date: date | None = None,
    children: list[tuple[str, date]] | None = None,
    housing: bool = True,
    move: bool = True,
    partner: bool = True,
) -> dict[str, Any]:
    """A mutation snapshot as the contract shows it (CONTRACTS.md §1)."""
    report = report_date or (date.today() + timedelta(days=200))
    data: dict[str, Any] = {
        "mutation_id": mutation_id,
        "revision": revision,
        "agent": {
            "agent_id": agent_id,
            "rank": "Sergent",
            "given_name": "Camille",
            "family_name": "Martin",
            "email": "camille.martin@example.fr",
            "phone": "+33612345678",
            "population": "militaire",
        },
        "destination": {"unit": "Base navale", "commune_insee": destination},
        "report_date": report.isoformat(),
        "household": {
            "partner": partner,
            "children": [
                {"child_ref": ref, "birth_date": born.isoformat()} for ref, born in children or []
            ],
        },
        "needs": {"housing": housing, "move": move},
    }
    if origin is not None:
        data["origin"] = {"unit": "3e RIMa", "commune_insee": origin}
    return data


def hr_event(data: dict[str, Any], *, kind: str = "announced") -> CloudEvent:
    types = {
        "announced": hr.MUTATION_ANNOUNCED,
        "amended": hr.MUTATION_AMENDED,
        "cancelled": hr.MUTATION_CANCELLED,
    }
    return CloudEvent.create(types[kind], HR_SOURCE, data)


def cancellation(mutation_id: str, agent_id: str, revision: int, reason: str) -> CloudEvent:
    return hr_event(
        {
            "mutation_id": mutation_id,
            "revision": revision,
            "agent": {"agent_id": agent_id},
            "reason": reason,
        },
        kind="cancelled",
    )


def structured(event: CloudEvent) -> bytes:
    return to_structured(event)


@dataclass
class RunningService:
    """A started mobility app and what tests need around it."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: MobilitySettings
    topics: Topics
    key: LocalSigningKey
    bootstrap: str
    producer: AIOKafkaProducer

    def token(self, sub: str, *roles: Role, atlas_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.issue(sub, roles, atlas_id=atlas_id)}"}

    @property
    def ops(self) -> dict[str, str]:
        return self.token("ops-1", Role.OPS)

    async def publish(self, topic: str, event: CloudEvent, key: str) -> None:
        message = to_kafka(event, key)
        await self.producer.send_and_wait(
            topic, key=message.key, value=message.value, headers=message.headers
        )

    async def publish_hr(self, event: CloudEvent) -> None:
        await self.publish(self.topics.hr, event, event.data["agent"]["agent_id"])

    async def publish_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        await self.producer.send_and_wait(topic, key=key, value=value, headers=headers)

    async def dossier(self, mutation_id: str) -> dict[str, Any] | None:
        response = await self.client.get(f"/v1/dossiers/{mutation_id}", headers=self.ops)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_dossier(
        self, mutation_id: str, *, revision: int = 1, cases: int | None = None, timeout: float = 30
    ) -> dict[str, Any]:
        """Poll until the dossier has `revision` and, if given, that many cases applied."""

        async def probe() -> dict[str, Any] | None:
            found = await self.dossier(mutation_id)
            if found is None or found["revision"] < revision:
                return None
            if cases is not None:
                applied = [c for c in found["cases"] if c["status"] is not None]
                if len(applied) != cases:
                    return None
            return found

        return await wait_until(probe, timeout=timeout, interval=0.1)

    async def timeline(self, mutation_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/dossiers/{mutation_id}/timeline", headers=self.ops)
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries


async def start_service(
    *, database_url: str, bootstrap: str, key_path: Path, **overrides: Any
) -> AsyncIterator[RunningService]:
    """Start the app (API and workers in one process, as in local mode) on fresh topics."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap": bootstrap,
        "auth_local_key_path": key_path,
        "stream_data_dir": key_path.parent / "stream",  # faust's local data, never the cwd
        "run_workers": True,
        "topic_prefix": prefix,
        "stream_batch_within": 0.02,
        "stream_session_timeout": 6.0,
        "stream_commit_interval": 0.5,
        "reminder_interval_seconds": 0.5,
        "relay_poll_seconds": 0.5,
        "log_json": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    settings = MobilitySettings(**values)
    app = create(settings)
    key = LocalSigningKey.load_or_create(key_path)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    async with app.router.lifespan_context(app):
        await producer.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                service = RunningService(
                    app, client, settings, Topics(settings.topic_prefix), key, bootstrap, producer
                )
                runtime = app.state.runtime
                await wait_until(lambda: _started(runtime), timeout=60, interval=0.1)
                yield service
        finally:
            await producer.stop()


async def _started(runtime: Any) -> bool:
    return bool(runtime.consumers) and all(c.started.is_set() for c in runtime.consumers)


class TopicReader:
    """Reads a topic from the beginning and keeps what it read, to poll for expected events."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=100)
        for batch in batches.values():
            self.records.extend(batch)

    def events(
        self, *, subject_prefix: str | None = None, type: str | None = None
    ) -> list[CloudEvent]:
        found = []
        for record in self.records:
            for event in unbatched(from_kafka(list(record.headers or ()), record.value)):
                if type is not None and event.type != type:
                    continue
                if subject_prefix is not None and not (event.subject or "").startswith(
                    subject_prefix
                ):
                    continue
                found.append(event)
        return found

    async def wait_for(
        self, count: int, *, timeout: float = 20, **filters: Any
    ) -> list[CloudEvent]:
        """Poll until at least `count` matching events arrived; return them all."""

        async def probe() -> list[CloudEvent] | None:
            await self.poll()
            events = self.events(**filters)
            return events if len(events) >= count else None

        return await wait_until(probe, timeout=timeout, interval=0.05)


def unbatched(event: CloudEvent) -> list[CloudEvent]:
    """A `apply_case_commands` batch as its commands, each as the single command event it stands for
    (its type, the case as subject, its data): tests read the requests commands one by one."""
    if event.type != requests.APPLY_CASE_COMMANDS:
        return [event]
    assert isinstance(event.data, dict)
    out = []
    for item in event.data["commands"]:
        kind = (
            requests.OPEN_REQUEST if item["command"] == "open_request" else requests.CLOSE_REQUEST
        )
        out.append(
            CloudEvent.create(kind, event.source, item, subject=item["case_id"], id=event.id)
        )
    return out


def utcnow() -> datetime:
    return datetime.now(UTC)
