"""Starting the catalog app in tests, issuing tokens, reading the catalog topics."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from sqlalchemy import func, select

from atlas_catalog.app import create
from atlas_catalog.config import CatalogSettings
from atlas_catalog.db import event_tables
from atlas_events.auth import LocalSigningKey, Role
from atlas_events.cloudevents import CloudEvent, from_kafka
from atlas_events.kafka import ensure_topics
from atlas_events.registry import prefixed_registry
from atlas_events.service import Runtime


@dataclass
class CatalogClient:
    """A started catalog app, an HTTP client on it, and tokens for each role."""

    app: FastAPI
    http: httpx.AsyncClient
    key: LocalSigningKey

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def token(self, sub: str, *roles: Role, atlas_id: str | None = None) -> dict[str, str]:
        token = self.key.issue(sub, list(roles), atlas_id=atlas_id)
        return {"Authorization": f"Bearer {token}"}

    @property
    def ops(self) -> dict[str, str]:
        return self.token("ops-1", Role.OPS)

    @property
    def admin(self) -> dict[str, str]:
        return self.token("admin-1", Role.ADMIN)

    @property
    def agent(self) -> dict[str, str]:
        return self.token("2019123456", Role.AGENT)

    async def get(self, url: str, headers: Mapping[str, str] | None = None, **params: Any) -> Any:
        response = await self.http.get(url, params=params, headers=headers or self.ops)
        assert response.status_code == 200, response.text
        return response.json()

    async def search(self, q: str | None = None, **params: Any) -> list[str]:
        """Codes of the first page of results."""
        if q is not None:
            params["q"] = q
        page = await self.get("/v1/prestations", **params)
        return [item["code"] for item in page["items"]]

    async def outbox_count(self) -> int:
        async with self.runtime.db.transaction() as session:
            count = await session.scalar(select(func.count()).select_from(event_tables.outbox))
        return int(count or 0)

    async def unpublished(self) -> int:
        table = event_tables.outbox
        async with self.runtime.db.transaction() as session:
            count = await session.scalar(
                select(func.count()).select_from(table).where(table.c.published_at.is_(None))
            )
        return int(count or 0)


def settings(
    database_url: str,
    key_path: Path,
    *,
    kafka_bootstrap: str = "127.0.0.1:1",
    run_workers: bool = False,
    **values: Any,
) -> CatalogSettings:
    return CatalogSettings(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        auth_local_key_path=key_path,
        run_workers=run_workers,
        relay_poll_seconds=0.2,
        log_json=False,
        log_level="WARNING",
        **values,
    )


async def live_settings(
    database_url: str, key_path: Path, kafka_bootstrap: str, prefix: str, **values: Any
) -> CatalogSettings:
    """A catalog running its relay on the real broker, on `prefix`'s topics (created here)."""
    await ensure_topics(kafka_bootstrap, prefixed_registry(prefix))
    return settings(
        database_url,
        key_path,
        kafka_bootstrap=kafka_bootstrap,
        run_workers=True,
        topic_prefix=prefix,
        **values,
    )


@asynccontextmanager
async def started(config: CatalogSettings) -> AsyncIterator[CatalogClient]:
    """The app with its lifespan run (migrations, reference data, workers if asked)."""
    assert config.auth_local_key_path is not None
    key = LocalSigningKey.load_or_create(config.auth_local_key_path)
    app = create(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as http:
            yield CatalogClient(app, http, key)


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def collect_events(
    bootstrap: str,
    start: dict[TopicPartition, int],
    wanted: Callable[[CloudEvent], bool],
    *,
    count: int,
    timeout: float = 30.0,
) -> list[tuple[bytes | None, CloudEvent]]:
    """Read from `start` until `count` events satisfy `wanted` (or fail after `timeout`)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"catalog-test-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[bytes | None, CloudEvent]] = []
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout
        while len(found) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"found {len(found)} of {count} events before the timeout")
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for records in batches.values():
                for record in records:
                    event = from_kafka(list(record.headers or ()), record.value)
                    if wanted(event):
                        found.append((record.key, event))
        return found
    finally:
        await consumer.stop()
