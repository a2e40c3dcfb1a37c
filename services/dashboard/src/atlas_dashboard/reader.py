"""Workers feeding the dashboard: the topic projection and the Kafka lag and DLQ probe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from atlas_dashboard import metrics
from atlas_dashboard.overview import DlqSize, GroupLag, KafkaHealth
from atlas_dashboard.projection import Projection
from atlas_events.cloudevents import InvalidEvent, from_kafka
from atlas_events.consumer import DLQ_CONSUMER, DLQ_REASON
from atlas_events.registry import DLQ_SUFFIX, REGISTRY, TopicRegistry, UnknownEventType

log = structlog.get_logger(__name__)

TOPIC_RECHECK_SECONDS = 10.0
# The topics whose events make the figures; the others (HR mutations, commands, catalog
# prestations, vault metadata) are only watched through their lag and DLQs.
PROJECTED_TOPICS = (
    "catalog.spaces.v1",
    "mobility.dossiers.v1",
    "mobility.missions.v1",
    "mobility.handlers.logement.v1",
    "mobility.handlers.scolarite.v1",
    "mobility.handlers.demenagement.v1",
    "requests.requests.v1",
    "notify.deliveries.v1",
)


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


async def topic_partitions(
    admin: AIOKafkaAdminClient, names: Sequence[str]
) -> dict[str, list[TopicPartition]]:
    """The partitions of those of `names` that exist (a fresh metadata read, not a cache)."""
    wanted = set(names)
    found: dict[str, list[TopicPartition]] = {}
    for topic in await admin.describe_topics():
        if topic["topic"] in wanted and topic["error_code"] == 0:
            found[topic["topic"]] = sorted(
                TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]
            )
    return found


class ProjectionReader:
    """Reads the projected topics and every DLQ from the beginning into the projection (a Worker).

    No consumer group: partitions are assigned by hand and nothing is committed, so each start
    rebuilds the figures from what the topics hold, and the dashboard never shows up as lag.
    """

    name = "dashboard.projection"

    def __init__(
        self,
        projection: Projection,
        *,
        bootstrap: str,
        prefix: str = "",
        registry: TopicRegistry = REGISTRY,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.projection = projection
        self._options = dict(kafka_options or {})
        self.prefix = prefix
        self.registry = registry
        self._bootstrap = bootstrap
        self._stopping = asyncio.Event()
        self._targets: dict[TopicPartition, int] = {}  # end offsets seen at start-up
        self.caught_up = asyncio.Event()

    def topic_names(self) -> list[str]:
        """Prefixed names of every topic read: those projected, and every registry topic's DLQ."""
        dlqs = [t.dlq for t in self.registry.topics()]
        return [self.prefix + name for name in (*PROJECTED_TOPICS, *dlqs)]

    async def run(self) -> None:
        self.projection.reset()
        self.caught_up.clear()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id="atlas-dashboard-projection",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **self._options,
        )
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap,
            client_id="atlas-dashboard-projection",
            **self._options,
        )
        await consumer.start()
        await admin.start()
        try:
            assigned = await self._assign(consumer, admin, set())
            self._targets = await consumer.end_offsets(list(assigned)) if assigned else {}
            checked = time.monotonic()
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                for records in batches.values():
                    for record in records:
                        self._fold(record)
                await self._check_caught_up(consumer, assigned)
                if time.monotonic() - checked > TOPIC_RECHECK_SECONDS:
                    assigned = await self._assign(consumer, admin, assigned)  # new topics
                    checked = time.monotonic()
        finally:
            await admin.close()
            await consumer.stop()

    async def stop(self) -> None:
        self._stopping.set()

    async def _assign(
        self,
        consumer: AIOKafkaConsumer,
        admin: AIOKafkaAdminClient,
        assigned: set[TopicPartition],
    ) -> set[TopicPartition]:
        found = await topic_partitions(admin, self.topic_names())
        wanted = {tp for tps in found.values() for tp in tps}
        new = wanted - assigned
        if new:
            consumer.assign(sorted(wanted))
            await consumer.seek_to_beginning(*new)
            log.info("projection_assigned", partitions=len(wanted), new=len(new))
        return wanted

    async def _check_caught_up(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> None:
        if self.caught_up.is_set():
            return
        for tp, end in self._targets.items():
            if tp in assigned and await consumer.position(tp) < end:
                return
        self.caught_up.set()
        log.info("projection_caught_up", applied=self.projection.applied)

    def _fold(self, record: ConsumerRecord[bytes, bytes]) -> None:
        topic = record.topic.removeprefix(self.prefix)
        headers = list(record.headers or ())
        if topic.endswith(DLQ_SUFFIX):
            self.projection.apply_dead_letter(
                topic, _header(headers, DLQ_CONSUMER), _header(headers, DLQ_REASON)
            )
            metrics.EVENTS.labels("dead_letter").inc()
            return
        try:
            event = from_kafka(headers, record.value)
            if self.registry.topic_for_event(event.type).name != topic:
                raise UnknownEventType(f"{event.type} is not an event of {topic}")
            data = self.registry.validate(event.type, event.data)
        except (InvalidEvent, ValidationError, UnknownEventType) as exc:
            # The owner's consumers dead-letter it; the dashboard only reads, so it skips it.
            self.projection.skipped += 1
            metrics.EVENTS.labels("skipped").inc()
            log.info("projection_skipped", topic=record.topic, offset=record.offset, error=str(exc))
            return
        used = self.projection.apply(topic, data)
        metrics.EVENTS.labels("applied" if used else "ignored").inc()


class KafkaProbe:
    """Reads consumer lag (committed vs end offsets) and DLQ sizes from Kafka's admin API."""

    name = "dashboard.kafka"

    def __init__(
        self,
        *,
        bootstrap: str,
        prefix: str = "",
        registry: TopicRegistry = REGISTRY,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.prefix = prefix
        self._options = dict(kafka_options or {})
        self.registry = registry
        self._bootstrap = bootstrap
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.health = KafkaHealth(checked_at=None)

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id="atlas-dashboard-admin",
                **self._options,
            )
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id="atlas-dashboard-offsets",
                group_id=None,
                enable_auto_commit=False,
                **self._options,
            )
            await consumer.start()
            self._consumer = consumer
        return self._admin, self._consumer

    async def refresh(self) -> KafkaHealth:
        """Read lag and DLQ sizes now; on failure keep the last figures with the error."""
        try:
            async with asyncio.timeout(20):
                health = await self._read()
        except Exception as exc:
            await self.close()  # reconnect next time
            self.health = self.health.model_copy(update={"error": f"{type(exc).__name__}: {exc}"})
            raise
        self.health = health
        metrics.publish_kafka(health)
        return health

    async def _read(self) -> KafkaHealth:
        admin, consumer = await self._clients()
        ours = {self.prefix + t.name for t in self.registry.topics()}
        dlqs = [self.prefix + t.dlq for t in self.registry.topics()]
        groups = sorted(g[0] for g in await admin.list_consumer_groups())
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            mine = {tp: o.offset for tp, o in offsets.items() if tp.topic in ours and o.offset >= 0}
            if mine:
                committed[group] = mine
        dlq_tps = [tp for tps in (await topic_partitions(admin, dlqs)).values() for tp in tps]
        lag_tps = {tp for offsets in committed.values() for tp in offsets}
        ends = (
            await consumer.end_offsets(sorted(lag_tps | set(dlq_tps))) if lag_tps or dlq_tps else {}
        )
        starts = await consumer.beginning_offsets(dlq_tps) if dlq_tps else {}
        lag = []
        for group, offsets in committed.items():
            by_topic: dict[str, list[TopicPartition]] = {}
            for tp in offsets:
                by_topic.setdefault(tp.topic, []).append(tp)
            for topic, tps in sorted(by_topic.items()):
                done = sum(offsets[tp] for tp in tps)
                end = sum(ends[tp] for tp in tps)
                lag.append(
                    GroupLag(
                        group=group,
                        topic=topic.removeprefix(self.prefix),
                        partitions=len(tps),
                        committed=done,
                        end=end,
                        lag=sum(max(0, ends[tp] - offsets[tp]) for tp in tps),
                    )
                )
        sizes: dict[str, int] = {}
        for tp in dlq_tps:
            name = tp.topic.removeprefix(self.prefix)
            sizes[name] = sizes.get(name, 0) + ends[tp] - starts[tp]
        return KafkaHealth(
            checked_at=datetime.now(UTC),
            lag=sorted(lag, key=lambda g: (-g.lag, g.group, g.topic)),
            dlq=[DlqSize(topic=t, messages=n) for t, n in sorted(sizes.items())],
        )

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
