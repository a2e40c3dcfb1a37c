"""Outbox → relay → topic → idempotent consumer, on the real broker and real databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import counter_domain as cd
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.cloudevents import CloudEvent, to_kafka
from atlas_events.consumer import (
    DLQ_CONSUMER,
    DLQ_REASON,
    MAX_REASON_CHARS,
    dlq_reason,
    failure_reason,
)
from atlas_events.db import Database
from atlas_events.dlq import replay
from atlas_events.errors import PermanentError, install_error_handlers
from atlas_events.outbox import (
    MAX_EVENT_BYTES,
    RELAY_FAILURES,
    CorruptPackedRow,
    EventTooLarge,
    Outbox,
    OutboxRelay,
    claim_publishing,
    outbox_records,
    pack_records,
    unpack_records,
)
from atlas_events.testing import read_topic, topic_size, wait_until

SOURCE = "urn:atlas:test"


def incremented(counter: str, amount: int = 1) -> CloudEvent:
    return CloudEvent.create(cd.INCREMENTED, SOURCE, {"counter": counter, "amount": amount})


async def produce_raw(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for key, value, headers in messages:
            await producer.send_and_wait(topic, key=key, value=value, headers=headers)
    finally:
        await producer.stop()


async def produce_events(bootstrap: str, topic: str, *events: CloudEvent) -> None:
    encoded = [to_kafka(e, key=e.data["counter"]) for e in events]
    await produce_raw(bootstrap, topic, [(m.key, m.value, m.headers) for m in encoded])


async def run_in_background(runner: cd.ConsumerRunner) -> asyncio.Task[None]:
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), timeout=30)
    return task


@asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    """The relay's loop in a task for the block's duration, stopped and awaited after it."""
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        await relay.stop()
        await task


async def outbox_rows(db: Database, *, pending: bool = False) -> int:
    """The outbox's rows, or only those not published yet."""
    table = cd.tables.outbox
    query = select(func.count()).select_from(table)
    if pending:
        query = query.where(table.c.published_at.is_(None))
    async with db.transaction() as session:
        return int(await session.scalar(query) or 0)


async def test_round_trip_outbox_relay_topic_consumer(counter_db, kafka_bootstrap, unique_topic):
    topic = await unique_topic(partitions=3)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    # A long fallback poll: only the in-process commit notification can make this test pass fast.
    relay = OutboxRelay(
        counter_db, outbox, bootstrap=kafka_bootstrap, client_id="t", poll_seconds=60
    )
    relay_task = asyncio.create_task(relay.run())
    runner = cd.make_runner(counter_db, kafka_bootstrap, topic, group=f"{topic}-g")
    consumer_task = await run_in_background(runner)
    try:
        async with counter_db.transaction() as session:
            await outbox.add(session, incremented("a", 2), key="a")
            await outbox.add(session, incremented("b", 5), key="b")
        assert await wait_until(lambda: cd.counter_value(counter_db, "a"), timeout=10) == 2
        assert await wait_until(lambda: cd.counter_value(counter_db, "b"), timeout=10) == 5
        assert await topic_size(kafka_bootstrap, topic) == 2
    finally:
        await runner.stop()
        await relay.stop()
        await asyncio.gather(consumer_task, relay_task)


async def test_rolled_back_transaction_publishes_nothing(counter_db, kafka_bootstrap, unique_topic):
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    try:
        async with counter_db.transaction() as session:
            await outbox.add(session, incremented("never"), key="never")
            raise RuntimeError("business rule failed after the event was added")
    except RuntimeError:
        pass
    relay = OutboxRelay(counter_db, outbox, bootstrap=kafka_bootstrap, client_id="t")
    try:
        assert await relay.publish_pending() == 0
    finally:
        await relay._close()
    assert await outbox_rows(counter_db) == 0
    assert await topic_size(kafka_bootstrap, topic) == 0


async def test_outbox_refuses_an_event_the_registry_does_not_know(counter_db, unique_topic):
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    bad = CloudEvent.create(cd.INCREMENTED, SOURCE, {"counter": "x", "amount": "many"})
    unknown = CloudEvent.create("fr.defense.atlas.test.nope.v1", SOURCE, {})
    for event, problem in ((bad, "amount"), (unknown, "nope")):
        with pytest.raises(Exception, match=problem):
            async with counter_db.transaction() as session:
                await outbox.add(session, event, key="x")
    assert await outbox_rows(counter_db) == 0


async def test_outbox_refuses_an_event_larger_than_kafka_takes(counter_db, unique_topic):
    """Kafka would refuse such a row at every attempt, holding up every event after it: it is
    refused in the transaction that writes it, as a permanent error (a consumer dead-letters
    the message that caused it; an API answers 413)."""
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    huge = incremented("x" * (MAX_EVENT_BYTES + 1))
    for write in (
        lambda session: outbox.add(session, huge, key="huge"),
        lambda session: outbox.add_many(session, [(incremented("ok"), "ok"), (huge, "huge")]),
    ):
        with pytest.raises(EventTooLarge, match=rf"{cd.INCREMENTED} would be \d+ bytes") as caught:
            async with counter_db.transaction() as session:
                await write(session)
        assert isinstance(caught.value, PermanentError)
        assert caught.value.status_code == 413
    assert await outbox_rows(counter_db) == 0
    async with counter_db.transaction() as session:  # what fits still goes in
        await outbox.add(session, incremented("x" * (MAX_EVENT_BYTES // 2)), key="half")
    assert await outbox_rows(counter_db) == 1


async def test_api_request_that_would_write_an_event_too_large_is_answered_413(
    counter_db, unique_topic
):
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/counters/{name}/increments", status_code=202)
    async def increment(name: str, body: dict[str, str]) -> dict[str, str]:
        async with counter_db.transaction() as session:
            await outbox.add(session, incremented(name + body["suffix"]), key=name)
        return {"status": "accepted"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        refused = await http.post(
            "/counters/big/increments", json={"suffix": "x" * MAX_EVENT_BYTES}
        )
        accepted = await http.post("/counters/small/increments", json={"suffix": "x"})
    assert refused.status_code == 413
    assert refused.json()["error"] == "EventTooLarge"
    assert f"over the {MAX_EVENT_BYTES}" in refused.json()["detail"]
    assert accepted.status_code == 202
    assert await outbox_rows(counter_db) == 1  # the refused request wrote nothing


async def test_add_many_publishes_every_event_in_order_and_wakes_the_relay(
    counter_db, kafka_bootstrap, unique_topic
):
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    relay = OutboxRelay(
        counter_db, outbox, bootstrap=kafka_bootstrap, client_id="t", poll_seconds=60
    )
    events = [incremented("many", i) for i in range(1, 301)]
    async with running(relay):
        async with counter_db.transaction() as session:
            assert await outbox.add_many(session, [(e, "many") for e in events]) == len(events)
        # Only the commit's wake-up can publish within the timeout (the poll is 60 s).
        records = await read_topic(kafka_bootstrap, topic, count=len(events), timeout=10)
    assert [dict(r.headers)["ce_id"].decode() for r in records] == [e.id for e in events]
    assert all(r.key == b"many" for r in records)


async def test_add_many_refuses_the_whole_batch_for_one_invalid_event(counter_db, unique_topic):
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    bad = CloudEvent.create(cd.INCREMENTED, SOURCE, {"counter": "x", "amount": "many"})
    with pytest.raises(Exception, match="amount"):
        async with counter_db.transaction() as session:
            await outbox.add_many(session, [(incremented("ok"), "ok"), (bad, "x")])
    assert await outbox_rows(counter_db) == 0


async def test_add_many_validates_only_data_not_built_from_the_declared_model(
    counter_db, unique_topic, monkeypatch
):
    topic = await unique_topic(partitions=1)
    registry = cd.make_registry(topic)
    outbox = Outbox(cd.tables, registry=registry)
    validated: list[str] = []
    real_validate = registry.validate

    def counting(ce_type: str, data: object) -> object:
        validated.append(ce_type)
        return real_validate(ce_type, data)

    monkeypatch.setattr(registry, "validate", counting)

    class Lookalike(cd.Incremented):  # not the declared class: its data is checked
        pass

    built = cd.Incremented(counter="m", amount=2)
    other = Lookalike(counter="m", amount=3)
    events = [
        (CloudEvent.create(cd.INCREMENTED, SOURCE, built), "m"),
        (CloudEvent.create(cd.INCREMENTED, SOURCE, other), "m"),
        (incremented("m", 4), "m"),
    ]
    async with counter_db.transaction() as session:
        with pytest.raises(ValueError, match="one model"):
            await outbox.add_many(session, events, models=[built])
        assert await outbox.add_many(session, events, models=[built, other, None]) == 3
    assert validated == [cd.INCREMENTED, cd.INCREMENTED]  # the lookalike's and the plain dict's
    assert await outbox_rows(counter_db) == 3


async def test_same_event_delivered_twice_changes_state_once(
    counter_db, kafka_bootstrap, unique_topic
):
    topic = await unique_topic(partitions=3)
    event = incremented("dup", 3)
    await produce_events(kafka_bootstrap, topic, event, event, incremented("dup", 10))
    runner = cd.make_runner(counter_db, kafka_bootstrap, topic, group=f"{topic}-g")
    task = await run_in_background(runner)
    try:
        await wait_until(lambda: _eq(cd.counter_value(counter_db, "dup"), 13))
        async with counter_db.transaction() as session:
            processed = await session.scalar(select(func.count()).select_from(cd.tables.processed))
        assert processed == 2
        assert await topic_size(kafka_bootstrap, f"{topic}.dlq") == 0  # a duplicate is no failure
    finally:
        await runner.stop()
        await task
    assert await cd.counter_value(counter_db, "dup") == 13


async def test_poison_message_goes_to_dlq_and_next_message_is_processed(
    counter_db, kafka_bootstrap, unique_topic
):
    topic = await unique_topic(partitions=1)
    garbage = (b"k", b"{not json", [("ce_id", b"1")])
    invalid = to_kafka(CloudEvent.create(cd.INCREMENTED, SOURCE, {"counter": "p"}), key="p")
    await produce_raw(
        kafka_bootstrap, topic, [garbage, (invalid.key, invalid.value, invalid.headers)]
    )
    await produce_events(kafka_bootstrap, topic, incremented("after-poison", 1))
    runner = cd.make_runner(counter_db, kafka_bootstrap, topic, group=f"{topic}-g")
    task = await run_in_background(runner)
    try:
        assert await wait_until(lambda: cd.counter_value(counter_db, "after-poison")) == 1
        dead = await read_topic(kafka_bootstrap, f"{topic}.dlq", count=2)
    finally:
        await runner.stop()
        await task
    reasons = [dlq_reason(r.headers) or "" for r in dead]
    assert reasons[0].startswith("invalid event"), reasons[0]
    assert "ce_" in reasons[0], reasons[0]
    assert reasons[1].startswith("invalid data"), reasons[1]
    assert "amount" in reasons[1], reasons[1]
    assert dead[0].value == b"{not json"  # the original bytes, untouched
    assert dict(dead[0].headers)[DLQ_CONSUMER] == f"{topic}-g".encode()
    assert ("ce_id", b"1") in list(dead[0].headers)  # the original headers travel along


async def test_poison_message_as_large_as_its_topic_takes_reaches_the_dlq_whole(
    counter_db, kafka_bootstrap, unique_topic
):
    """A message at its topic's size limit (1 MiB by default) no longer fits there once the DLQ
    headers are added: the DLQ takes more, so it is parked byte for byte and the next is applied
    (a DLQ refusing it would be retried for ever and hold up the partition)."""
    topic = await unique_topic(partitions=1)
    value = b"{not json" + b" " * 1_048_300
    await produce_raw(kafka_bootstrap, topic, [(b"k", value, [("ce_id", b"huge")])])
    await produce_events(kafka_bootstrap, topic, incremented("after-huge", 1))
    runner = cd.make_runner(counter_db, kafka_bootstrap, topic, group=f"{topic}-g")
    task = await run_in_background(runner)
    try:
        assert await wait_until(lambda: cd.counter_value(counter_db, "after-huge")) == 1
        [dead] = await read_topic(kafka_bootstrap, f"{topic}.dlq", count=1)
    finally:
        await runner.stop()
        await task
    assert dead.value == value
    assert (dlq_reason(dead.headers) or "").startswith("invalid event"), dlq_reason(dead.headers)
    assert ("ce_id", b"huge") in list(dead.headers)


def test_a_failure_reason_stays_short_however_many_problems() -> None:
    many = [{"counter": "c", "amount": f"not {i}"} for i in range(2000)]
    with pytest.raises(ValidationError) as failure:
        TypeAdapter(list[cd.Incremented]).validate_python(many)
    reason = failure_reason(failure.value)
    assert reason.startswith("invalid data: 0.amount: "), reason[:100]
    assert "1999.amount" not in reason
    assert reason.endswith(" more characters)"), reason[-100:]
    assert MAX_REASON_CHARS < len(reason) < MAX_REASON_CHARS + 40
    assert failure_reason(ValueError("short")) == "ValueError: short"


async def test_failing_handler_is_retried_then_dead_lettered(
    counter_db, kafka_bootstrap, unique_topic
):
    topic = await unique_topic(partitions=1)
    boom = CloudEvent.create(cd.EXPLODED, SOURCE, {"counter": "boom"})
    await produce_events(kafka_bootstrap, topic, boom, incremented("after-boom", 4))
    runner = cd.make_runner(counter_db, kafka_bootstrap, topic, group=f"{topic}-g", max_attempts=3)
    task = await run_in_background(runner)
    try:
        assert await wait_until(lambda: cd.counter_value(counter_db, "after-boom")) == 4
        [dead] = await read_topic(kafka_bootstrap, f"{topic}.dlq", count=1)
    finally:
        await runner.stop()
        await task
    reason = dict(dead.headers)[DLQ_REASON].decode()
    assert reason.startswith("failed after 3 attempts")
    assert "exploded" in reason


async def test_crash_between_db_commit_and_offset_commit_does_not_apply_twice(
    pg_counter_db, kafka_bootstrap, unique_topic
):
    topic = await unique_topic(partitions=1)
    group = f"{topic}-g"
    await produce_events(kafka_bootstrap, topic, incremented("crash", 7))
    script = Path(cd.__file__)
    url = pg_counter_db.url
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(script), url, kafka_bootstrap, topic, group],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 17, proc.stderr[-2000:]
    assert "committed-then-crashing" in proc.stdout
    assert await cd.counter_value(pg_counter_db, "crash") == 7  # the database commit happened

    seen: list[int] = []

    async def record(delivery: cd.Delivery) -> None:
        seen.append(delivery.offset)

    # The offset was never committed: the same group reads the message again, and skips it.
    runner = cd.make_runner(pg_counter_db, kafka_bootstrap, topic, group=group)
    runner._after_db_commit = record
    await produce_events(kafka_bootstrap, topic, incremented("crash-next", 1))
    task = await run_in_background(runner)
    try:
        await wait_until(lambda: cd.counter_value(pg_counter_db, "crash-next"))
    finally:
        await runner.stop()
        await task
    assert seen == [0, 1]  # offset 0 was re-read…
    assert await cd.counter_value(pg_counter_db, "crash") == 7  # …and not applied twice


async def test_several_relays_publish_each_row_once_and_each_key_in_order(
    pg_counter_db, kafka_bootstrap, unique_topic
):
    """Every worker process runs a relay: together they publish each row once, and the events
    of one key reach its partition in the order they were written (integrators and the
    services' own consumers rely on a key's order: an open before its close)."""
    topic = await unique_topic(partitions=3)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    keys, per_key = 7, 150
    async with pg_counter_db.transaction() as session:
        for seq in range(1, per_key + 1):
            for k in range(keys):
                await outbox.add(session, incremented(f"c{k}", seq), key=f"c{k}")
    count = keys * per_key
    relays = [
        OutboxRelay(
            pg_counter_db, outbox, bootstrap=kafka_bootstrap, client_id=f"r{i}", batch_size=35
        )
        for i in range(3)
    ]

    async def drain(relay: OutboxRelay) -> int:
        total = 0
        while await outbox_rows(pg_counter_db, pending=True):
            total += await relay.publish_pending()
        return total

    try:
        totals = await asyncio.gather(*(drain(r) for r in relays))
    finally:
        for relay in relays:
            await relay._close()
    assert sum(totals) == count
    assert await topic_size(kafka_bootstrap, topic) == count
    records = await read_topic(kafka_bootstrap, topic, count=count)
    assert len({dict(r.headers)["ce_id"] for r in records}) == count
    seen: dict[str, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        data = json.loads(record.value or b"{}")
        seen.setdefault(data["counter"], []).append(data["amount"])
    assert seen == {f"c{k}": list(range(1, per_key + 1)) for k in range(keys)}


def test_packed_records_read_back_as_written() -> None:
    records = [
        ("t.a", b"k1", b'{"counter":"k1"}', [("ce_id", b"1"), ("traceparent", b"00-ab-cd-01")]),
        ("t.b", None, None, []),  # no key, a tombstone
        ("t.a", b"", b"", [("empty", b"")]),
        ("t.\u00e9", "é".encode(), b"x" * 70_000, [("h", b"\x00\xff")]),
    ]
    assert unpack_records(pack_records(records)) == records
    assert unpack_records(b"") == []
    for corrupt in (b"\x09" + pack_records(records)[1:], pack_records(records)[:-3], b"\x01N"):
        with pytest.raises(CorruptPackedRow):
            unpack_records(corrupt)


async def test_packed_rows_publish_each_event_once_in_order_among_single_rows(
    counter_db, kafka_bootstrap, unique_topic
):
    """A packed row (one row for a batch's events) is published as its events, in the order
    they were written, between the single rows written before and after it; relays with a
    small batch publish a packed row larger than their batch alone, and each event once."""
    topic = await unique_topic(partitions=3)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    keys, per_key = 5, 40
    async with counter_db.transaction() as session:
        for k in range(keys):
            await outbox.add(session, incremented(f"c{k}", 0), key=f"c{k}")  # before: single
    async with counter_db.transaction() as session:
        packed = [
            (incremented(f"c{k}", seq), f"c{k}")
            for seq in range(1, per_key + 1)
            for k in range(keys)
        ]
        assert await outbox.add_many(session, packed, packed=True) == keys * per_key
    async with counter_db.transaction() as session:
        for k in range(keys):
            await outbox.add(session, incremented(f"c{k}", per_key + 1), key=f"c{k}")  # after
    count = keys * (per_key + 2)
    assert await outbox_rows(counter_db) == 2 * keys + 1  # the batch is one row
    async with counter_db.transaction() as session:
        listed = await outbox_records(session, cd.tables, pending=True)
    assert len(listed) == count
    relay = OutboxRelay(counter_db, outbox, bootstrap=kafka_bootstrap, client_id="p", batch_size=7)
    published = []
    try:
        while await outbox_rows(counter_db, pending=True):
            published.append(await relay.publish_pending())
    finally:
        await relay._close()
    assert keys * per_key in published  # the packed row, alone, over the batch size
    assert sum(published) == count
    records = await read_topic(kafka_bootstrap, topic, count=count)
    assert len({dict(r.headers)["ce_id"] for r in records}) == count
    assert {dict(r.headers)["ce_type"] for r in records} == {cd.INCREMENTED.encode()}
    seen: dict[str, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        data = json.loads(record.value or b"{}")
        assert record.key == data["counter"].encode()
        seen.setdefault(data["counter"], []).append(data["amount"])
    assert seen == {f"c{k}": list(range(per_key + 2)) for k in range(keys)}
    # A key's partition is the one its single events go to (murmur2, as the Java client).
    partitions = {(r.key, r.partition) for r in records}
    assert len(partitions) == keys


async def test_graceful_stop_commits_offsets(counter_db, kafka_bootstrap, unique_topic):
    topic = await unique_topic(partitions=2)
    await produce_events(kafka_bootstrap, topic, *(incremented("g") for _ in range(20)))
    group = f"{topic}-g"
    runner = cd.make_runner(counter_db, kafka_bootstrap, topic, group=group)
    task = await run_in_background(runner)
    await wait_until(lambda: _eq(cd.counter_value(counter_db, "g"), 20))
    await runner.stop()
    await task

    seen: list[int] = []

    async def record(delivery: cd.Delivery) -> None:
        seen.append(delivery.offset)

    again = cd.make_runner(counter_db, kafka_bootstrap, topic, group=group, after_db_commit=record)
    await produce_events(kafka_bootstrap, topic, incremented("g-after"))
    task = await run_in_background(again)
    try:
        await wait_until(lambda: cd.counter_value(counter_db, "g-after"))
    finally:
        await again.stop()
        await task
    assert len(seen) == 1  # only the new message: everything before was committed at stop


async def _eq(value_coro, expected):  # type: ignore[no-untyped-def]
    return (await value_coro) == expected


async def test_dead_lettered_message_is_replayed_once_fixed(
    counter_db, kafka_bootstrap, unique_topic
):
    topic = await unique_topic(partitions=1)
    group = f"{topic}-g"
    await produce_events(
        kafka_bootstrap, topic, CloudEvent.create(cd.EXPLODED, SOURCE, {"counter": "r"})
    )
    runner = cd.make_runner(counter_db, kafka_bootstrap, topic, group=group, max_attempts=2)
    task = await run_in_background(runner)
    try:
        await read_topic(kafka_bootstrap, f"{topic}.dlq", count=1)
    finally:
        await runner.stop()
        await task

    async def fixed(session, delivery):  # type: ignore[no-untyped-def]
        await cd.handle_incremented(session, _as_increment(delivery))

    result = await replay(kafka_bootstrap, topic, consumer=group, idle_ms=1000)
    assert result.replayed == 1
    assert (await replay(kafka_bootstrap, topic, idle_ms=500)).replayed == 0  # progress kept

    healed = cd.make_runner(counter_db, kafka_bootstrap, topic, group=group)
    healed.handlers[cd.EXPLODED] = fixed
    task = await run_in_background(healed)
    try:
        assert await wait_until(lambda: cd.counter_value(counter_db, "r")) == 1
    finally:
        await healed.stop()
        await task


def _as_increment(delivery: cd.Delivery) -> cd.Delivery:
    data = cd.Incremented(counter=delivery.data.counter, amount=1)  # type: ignore[union-attr]
    return cd.Delivery(
        delivery.event, data, delivery.topic, delivery.partition, delivery.offset, None
    )


@asynccontextmanager
async def _relay_and_other_writer(
    db: Database, bootstrap: str, topic: str
) -> AsyncIterator[tuple[OutboxRelay, Database, Outbox]]:
    """A relay that only polls every minute, listening; and another engine with another Outbox
    object, so nothing in this process can signal the relay when it writes."""
    registry = cd.make_registry(topic)
    outbox = Outbox(cd.tables, registry=registry)
    relay = OutboxRelay(db, outbox, bootstrap=bootstrap, client_id="t", poll_seconds=60)
    writer_db = Database(db.url)
    try:
        async with running(relay):
            await wait_until(lambda: _listening(relay), timeout=10)
            yield relay, writer_db, Outbox(cd.tables, registry=registry)
    finally:
        await writer_db.dispose()


async def test_relay_is_woken_by_another_process_commit(
    pg_counter_db, kafka_bootstrap, unique_topic
):
    """On PostgreSQL the trigger's NOTIFY wakes the relay: no polling, even across processes."""
    topic = await unique_topic(partitions=1)
    async with _relay_and_other_writer(pg_counter_db, kafka_bootstrap, topic) as (_, db, writer):
        async with db.transaction() as session:
            await writer.add(session, incremented("notify"), key="notify")
        [record] = await read_topic(kafka_bootstrap, topic, count=1, timeout=10)
        assert b"notify" in (record.value or b"")


async def test_a_relay_waits_while_another_publishes_and_takes_over_when_it_stops(
    pg_counter_db, kafka_bootstrap, unique_topic
):
    """While another relay holds the publishing lock this one sends nothing; once that relay is
    gone (its transaction ended: stopped, crashed), this one publishes within its poll, with no
    new commit to wake it."""
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    relay = OutboxRelay(
        pg_counter_db, outbox, bootstrap=kafka_bootstrap, client_id="t", poll_seconds=0.5
    )
    other = Database(pg_counter_db.url)
    try:
        async with running(relay):
            await wait_until(lambda: _listening(relay), timeout=10)
            async with other.transaction() as publishing_elsewhere:
                await claim_when_free(publishing_elsewhere, hold_seconds=60)
                async with pg_counter_db.transaction() as session:
                    await outbox.add(session, incremented("takeover"), key="takeover")
                await asyncio.sleep(1.5)  # three polls and the commit's wake-up
                assert await topic_size(kafka_bootstrap, topic) == 0
                assert await outbox_rows(pg_counter_db, pending=True) == 1
            [record] = await read_topic(kafka_bootstrap, topic, count=1, timeout=5)
            assert b"takeover" in (record.value or b"")
            await wait_until(lambda: _none_pending(pg_counter_db), timeout=5)
    finally:
        await other.dispose()


async def test_a_relay_gone_silent_with_the_lock_loses_it_after_hold_seconds(
    pg_counter_db, kafka_bootstrap, unique_topic
):
    """A relay whose node is lost keeps its connection open and the lock held: PostgreSQL ends
    its session once its transaction has been idle for `hold_seconds`, and another takes over
    long before TCP would notice."""
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    silent = Database(pg_counter_db.url)
    claimed = asyncio.Event()

    async def claim_then_go_silent() -> None:
        async with silent.transaction() as session:
            await claim_when_free(session, hold_seconds=1)
            claimed.set()
            await asyncio.sleep(30)

    holder = asyncio.create_task(claim_then_go_silent())
    await asyncio.wait_for(claimed.wait(), timeout=10)
    relay = OutboxRelay(
        pg_counter_db, outbox, bootstrap=kafka_bootstrap, client_id="t", poll_seconds=0.5
    )
    try:
        async with running(relay):
            async with pg_counter_db.transaction() as session:
                await outbox.add(session, incremented("after-silence"), key="after-silence")
            [record] = await read_topic(kafka_bootstrap, topic, count=1, timeout=8)
            assert b"after-silence" in (record.value or b"")
            assert not holder.done()  # taken over while the silent relay still "runs"
    finally:
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await holder
        await silent.dispose()


async def claim_when_free(session: AsyncSession, *, hold_seconds: float) -> None:
    """Claim the publishing lock as another relay would, waiting while a relay holds it for a
    batch (the relay under test claims it too when it starts)."""
    deadline = asyncio.get_running_loop().time() + 10
    while not await claim_publishing(session, hold_seconds):
        assert asyncio.get_running_loop().time() < deadline, "the publishing lock stayed taken"
        await asyncio.sleep(0.05)


async def _none_pending(db: Database) -> bool:
    return await outbox_rows(db, pending=True) == 0


async def test_a_relay_that_cannot_reach_kafka_counts_its_failures_and_keeps_the_rows(
    pg_counter_db, unique_topic
):
    """The failures feed the AtlasOutboxRelayFailing alert: a stalled relay makes no consumer
    lag, so nothing else would show that events wait in the outbox."""
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    async with pg_counter_db.transaction() as session:
        await outbox.add(session, incremented("waiting"), key="waiting")

    def failures() -> float:
        return sum(
            sample.value
            for metric in RELAY_FAILURES.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )

    before = failures()

    async def failed_twice() -> bool:
        return failures() >= before + 2

    relay = OutboxRelay(pg_counter_db, outbox, bootstrap="127.0.0.1:9", client_id="t")
    async with running(relay):
        await wait_until(failed_twice, timeout=15)
    assert await outbox_rows(pg_counter_db, pending=True) == 1


async def _listening(relay: OutboxRelay) -> bool:
    return relay._listener is not None


async def test_relay_listens_again_after_the_database_dropped_its_connection(
    pg_counter_db, kafka_bootstrap, unique_topic
):
    """A restarted database drops the LISTEN connection: the relay opens a new one by itself."""
    topic = await unique_topic(partitions=1)
    async with _relay_and_other_writer(pg_counter_db, kafka_bootstrap, topic) as (
        relay,
        db,
        writer,
    ):
        first = relay._listener
        async with db.transaction() as session:
            await session.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": first.get_server_pid()}
            )

        async def relistened() -> bool:
            return relay._listener is not None and relay._listener is not first

        await wait_until(relistened, timeout=10)
        async with db.transaction() as session:
            await writer.add(session, incremented("again"), key="again")
        [record] = await read_topic(kafka_bootstrap, topic, count=1, timeout=10)
        assert b"again" in (record.value or b"")


async def test_rebalance_while_consuming_applies_every_event_once(
    pg_counter_db, kafka_bootstrap, unique_topic
):
    topic = await unique_topic(partitions=3)
    group = f"{topic}-g"
    total = 300
    await produce_events(kafka_bootstrap, topic, *(incremented(f"k{i % 9}") for i in range(total)))
    first = cd.make_runner(pg_counter_db, kafka_bootstrap, topic, group=group, max_batch=10)
    first_task = await run_in_background(first)
    second = cd.make_runner(pg_counter_db, kafka_bootstrap, topic, group=group, max_batch=10)
    second_task = await run_in_background(second)  # joins: partitions are reassigned
    await first.stop()  # leaves: partitions move again
    await first_task

    async def applied() -> bool:
        async with pg_counter_db.transaction() as session:
            return (await session.scalar(select(func.sum(cd.counters.c.value)))) == total

    try:
        await wait_until(applied, timeout=30)
    finally:
        await second.stop()
        await second_task
    assert await topic_size(kafka_bootstrap, f"{topic}.dlq") == 0
