"""The consumer's opt-in transaction batches, on the real broker and real databases."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import counter_domain as cd
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.cloudevents import CloudEvent, to_kafka
from atlas_events.consumer import Delivery
from atlas_events.testing import read_topic, topic_size, wait_until

SOURCE = "urn:atlas:test"


def incremented(counter: str, amount: int = 1) -> CloudEvent:
    return CloudEvent.create(cd.INCREMENTED, SOURCE, {"counter": counter, "amount": amount})


async def produce(bootstrap: str, topic: str, events: Sequence[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            message = to_kafka(event, key="k")  # one key: one partition, one poll, in order
            await producer.send(
                topic, key=message.key, value=message.value, headers=message.headers
            )
        await producer.flush()
    finally:
        await producer.stop()


async def reached(db: cd.Database, counter: str, value: int) -> bool:
    return await cd.counter_value(db, counter) == value


async def processed_count(db: cd.Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(cd.tables.processed)) or 0)


async def test_a_batch_applies_runs_together_in_order_and_each_event_once(
    counter_db, kafka_bootstrap, unique_topic
):
    topic = await unique_topic(partitions=1)
    first = incremented("batch-a", 1)
    events = [first, incremented("batch-a", 2), first, incremented("batch-b", 5)]
    runs: list[list[tuple[str, int]]] = []

    async def together(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        runs.append([(d.data.counter, d.data.amount) for d in deliveries])  # type: ignore[union-attr]
        for delivery in deliveries:
            await cd.handle_incremented(session, delivery)

    await produce(kafka_bootstrap, topic, events)
    runner = cd.make_runner(
        counter_db,
        kafka_bootstrap,
        topic,
        group=f"{topic}-g",
        transaction_batch=50,
        batch_handlers={cd.INCREMENTED: together},
    )
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: reached(counter_db, "batch-b", 5))
    finally:
        await runner.stop()
        await task
    assert await cd.counter_value(counter_db, "batch-a") == 3  # the redelivered one counted once
    assert await processed_count(counter_db) == 3
    # Runs of the type go to the batch handler, in topic order, without the duplicate.
    applied = [item for run in runs for item in run]
    assert applied == [("batch-a", 1), ("batch-a", 2), ("batch-b", 5)]
    assert max(len(run) for run in runs) > 1


async def test_a_failing_batch_is_replayed_one_by_one_and_the_bad_event_dead_lettered(
    counter_db, kafka_bootstrap, unique_topic
):
    topic = await unique_topic(partitions=1)
    exploded = CloudEvent.create(cd.EXPLODED, SOURCE, {"counter": "boom"})
    events = [incremented("mixed", 1), exploded, incremented("mixed", 10)]
    await produce(kafka_bootstrap, topic, events)
    runner = cd.make_runner(
        counter_db, kafka_bootstrap, topic, group=f"{topic}-g", transaction_batch=50
    )
    runner.handlers[cd.EXPLODED] = cd.handle_exploded_permanently
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: reached(counter_db, "mixed", 11))
        [dead] = await read_topic(kafka_bootstrap, f"{topic}.dlq", count=1)
    finally:
        await runner.stop()
        await task
    assert b"never be applied" in dict(dead.headers)["atlas_dlq_reason"]
    assert await processed_count(counter_db) == 2  # the rolled-back batch left nothing behind
    assert await topic_size(kafka_bootstrap, f"{topic}.dlq") == 1


async def test_a_consumer_that_cannot_reach_the_broker_releases_its_client(
    pg_counter_db: cd.Database,
) -> None:
    import gc
    import warnings

    from aiokafka.errors import KafkaConnectionError

    runner = cd.make_runner(pg_counter_db, "127.0.0.1:1", "nowhere", group="unreachable")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(KafkaConnectionError):
            await runner.run()
        gc.collect()  # an unclosed aiokafka client warns when it is collected
    unclosed = [w for w in caught if "Unclosed AIOKafkaConsumer" in str(w.message)]
    assert unclosed == []
    assert not runner.started.is_set()
