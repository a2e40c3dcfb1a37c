"""Kafka helpers: the idempotent producer, topic creation from the registry, a readiness probe."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

if TYPE_CHECKING:
    from atlas_events.registry import TopicRegistry

log = structlog.get_logger(__name__)


def make_producer(
    bootstrap: str, *, client_id: str, linger_ms: int = 5, max_batch_size: int = 16384
) -> AIOKafkaProducer:
    """An idempotent producer acked by all in-sync replicas (aiokafka defaults to neither)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
        request_timeout_ms=15000,
    )


async def ensure_topics(
    bootstrap: str,
    registry: TopicRegistry | None = None,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create every registry topic (and its DLQ) that does not exist yet; return those created."""
    if registry is None:
        from atlas_events.registry import REGISTRY

        registry = REGISTRY
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs=configs,
            )
            for name, partitions, configs in registry.kafka_topics()
            if name not in existing
        ]
        if wanted:
            # Another process may have created them first; that is the state we wanted.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        created = [t.name for t in wanted]
        if created:
            log.info("kafka_topics_created", topics=created)
        return created
    finally:
        await admin.close()


class KafkaProbe:
    """A long-lived admin client answering `/readyz` with a real metadata request."""

    def __init__(self, bootstrap: str, *, timeout: float = 2.0) -> None:
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._admin: AIOKafkaAdminClient | None = None

    async def check(self) -> None:
        """Raise if the cluster does not answer a metadata request within the timeout."""
        async with asyncio.timeout(self._timeout):
            if self._admin is None:
                admin = AIOKafkaAdminClient(
                    bootstrap_servers=self._bootstrap, request_timeout_ms=int(self._timeout * 1000)
                )
                try:
                    await admin.start()
                except BaseException:
                    await admin.close()
                    raise
                self._admin = admin
            await self._admin.describe_cluster()

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
