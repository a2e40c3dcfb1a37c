"""`ensure_topics` returns once the new topics can be consumed: a consumer group formed right
after sees every partition (a topic missing from its metadata would stay unassigned)."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer

from atlas_events.kafka import ensure_topics
from atlas_events.registry import prefixed_registry


async def test_new_topics_are_served_when_ensure_topics_returns(kafka_bootstrap: str) -> None:
    registry = prefixed_registry(f"t{uuid.uuid4().hex[:8]}.")
    mobility = [t for t in registry.topics() if t.name.endswith(("hr.mutations.v1", "logement.v1"))]
    assert len(mobility) == 2
    names = [t.name for t in mobility]

    created = await ensure_topics(kafka_bootstrap, registry)

    assert set(names) <= set(created)
    consumer = AIOKafkaConsumer(*names, bootstrap_servers=kafka_bootstrap)
    await consumer.start()  # one metadata request, as a group member's at its first join
    try:
        for topic in mobility:
            assert consumer.partitions_for_topic(topic.name) == set(range(topic.partitions))
    finally:
        await consumer.stop()
    assert await ensure_topics(kafka_bootstrap, registry) == []  # nothing left to create
