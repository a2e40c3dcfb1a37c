"""Replaying dead-lettered messages onto their original topic once the cause is fixed.

Consumers are idempotent, so groups that had already applied a replayed event skip it; only the
consumer that failed on it applies it now.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from atlas_events.consumer import DLQ_CONSUMER, DLQ_HEADERS, DLQ_TOPIC
from atlas_events.kafka import KafkaOptions, make_producer

log = structlog.get_logger(__name__)

REPLAYED_FROM = "atlas_replayed_from"


@dataclass(frozen=True)
class ReplayResult:
    replayed: int
    skipped: int


async def replay(
    bootstrap: str,
    topic: str,
    *,
    consumer: str | None = None,
    limit: int | None = None,
    idle_ms: int = 2000,
    kafka_options: KafkaOptions | None = None,
) -> ReplayResult:
    """Move messages of `<topic>.dlq` (those that failed in `consumer`, if given) back to `topic`.

    Progress is a consumer group per topic, committed after each republished batch, so a replay
    interrupted midway resumes where it stopped and never republishes twice what it committed.
    """
    dlq = f"{topic}.dlq"
    reader = AIOKafkaConsumer(
        dlq,
        bootstrap_servers=bootstrap,
        group_id=f"atlas-dlq-replay.{topic}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **(kafka_options or {}),
    )
    producer = make_producer(
        bootstrap, client_id=f"atlas-dlq-replay.{topic}", kafka_options=kafka_options
    )
    await reader.start()
    await producer.start()
    replayed = skipped = 0
    try:
        while limit is None or replayed < limit:
            batches = await reader.getmany(timeout_ms=idle_ms, max_records=200)
            if not batches:
                break
            offsets: dict[TopicPartition, OffsetAndMetadata] = {}
            for tp, records in batches.items():
                for record in records:
                    if limit is not None and replayed >= limit:
                        break
                    headers = dict(record.headers or ())
                    original = headers.get(DLQ_TOPIC, topic.encode()).decode()
                    failed_in = headers.get(DLQ_CONSUMER, b"").decode()
                    if (consumer is not None and failed_in != consumer) or original != topic:
                        skipped += 1
                    else:
                        kept = [(k, v) for k, v in record.headers or () if k not in DLQ_HEADERS]
                        kept.append(
                            (REPLAYED_FROM, f"{dlq}:{tp.partition}:{record.offset}".encode())
                        )
                        await producer.send_and_wait(
                            topic, key=record.key, value=record.value, headers=kept
                        )
                        replayed += 1
                    offsets[tp] = OffsetAndMetadata(record.offset + 1, "")
            if offsets:
                await reader.commit(offsets)
    finally:
        await producer.stop()
        await reader.stop()
    log.info("dlq_replayed", topic=topic, replayed=replayed, skipped=skipped)
    return ReplayResult(replayed=replayed, skipped=skipped)
