"""Transactional outbox: events are written with the change that caused them, then relayed.

The caller adds events in its own session (`Outbox.add`); nothing leaves before that session
commits, and nothing leaves for a transaction that rolled back. `OutboxRelay` publishes committed
rows in id order with an idempotent producer. Every worker process of a service runs a relay; on
PostgreSQL one of them publishes at a time (a transaction-level advisory lock per batch), so the
events of one key reach Kafka in the order they were written, and another relay takes over
within `poll_seconds` when the one publishing stops (within `hold_seconds` when it went silent
with the lock held). A trigger's NOTIFY wakes them; on SQLite relays serialise on the write lock.
In-process commits wake the relay at once, so there is no busy polling. An event larger than
Kafka takes is refused when it is written (`EventTooLarge`), never left to stall the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from opentelemetry import context as otel_context
from prometheus_client import Counter, Histogram
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from atlas_events.cloudevents import CloudEvent, KafkaMessage, NewMessages, to_kafka
from atlas_events.db import Database, among, bulk_insert, try_advisory_xact_lock
from atlas_events.errors import PayloadTooLarge, PermanentError
from atlas_events.kafka import (
    KafkaOptions,
    KeyPartitioner,
    make_producer,
    send_in_batches,
    started,
)
from atlas_events.registry import REGISTRY, TopicRegistry
from atlas_events.tracing import inject_headers, trace_headers

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "atlas_outbox"
_PENDING_FLAG = "atlas_outbox_pending"

PUBLISHED = Counter("atlas_outbox_published_total", "Outbox rows published", ["topic"])
RELAY_FAILURES = Counter(
    "atlas_outbox_relay_failures_total",
    "Relay attempts that published nothing because Kafka or the database failed (retried)",
    ["error"],
)
PUBLISH_LAG = Histogram(
    "atlas_outbox_publish_lag_seconds",
    "From the outbox row's creation to its acknowledgement by Kafka",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# Bytes per partition and request: one 16 KiB batch (aiokafka's default) per round trip capped a
# relay well below the broker; the brokers accept 1 MiB messages (message.max.bytes).
RELAY_MAX_BATCH_BYTES = 512 * 1024
# The largest event the outbox takes (value, key and headers), under the 1 MiB a Kafka message may
# have (the brokers' message.max.bytes, the producers' max_request_size) with room for the record's
# own overhead. A larger row would be refused by Kafka at every attempt and hold up every event
# written after it: it is refused here, in the transaction that wrote it.
MAX_EVENT_BYTES = 1_000_000
RELISTEN_SECONDS = 5.0  # between attempts to LISTEN again after the connection was lost
# The advisory lock a relay holds while it publishes a batch (each service has its own database).
_PUBLISH_LOCK_NAME = "atlas_events.outbox.relay"


def _utcnow() -> datetime:
    return datetime.now(UTC)


# A Kafka record as the outbox keeps it: topic, key, value, headers.
Record = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]
# The event_type of a packed row (its events' own types are in their records' ce_type header).
PACKED_EVENT_TYPE = "atlas.outbox.packed"

# A packed row's records: a format byte, then the records as a list of (topic, key, value,
# headers) tuples in `marshal` version 4, which writes and reads such plain tuples, strings,
# bytes and None in C (the struct framing it replaced cost a twentieth of a worker's CPU in a
# burst); their format has not changed since Python 3.4. Rows are written only by the service
# itself; what is read back is checked to be records, never run.
_PACKED_FORMAT = b"\x01"
_MARSHAL_VERSION = 4


class CorruptPackedRow(ValueError):
    """A packed outbox row that does not hold records."""


def pack_records(records: Sequence[Record]) -> bytes:
    """The records of a packed outbox row, in order (`unpack_records` reads them back)."""
    return _PACKED_FORMAT + marshal.dumps(list(records), _MARSHAL_VERSION)


def unpack_records(blob: bytes) -> list[Record]:
    """The records `pack_records` packed, in their order; CorruptPackedRow if it is not that."""
    if not blob:
        return []
    if blob[:1] != _PACKED_FORMAT:
        raise CorruptPackedRow(f"unknown packed row format {blob[:1]!r}")
    try:
        records = marshal.loads(blob[1:])  # noqa: S302 - written by this service, checked below
    except (EOFError, ValueError, TypeError) as exc:
        raise CorruptPackedRow(f"packed row unreadable: {exc}") from exc
    if type(records) is not list or not all(
        type(r) is tuple and len(r) == 4 and type(r[0]) is str and type(r[3]) is list
        for r in records
    ):
        raise CorruptPackedRow("packed row does not hold (topic, key, value, headers) records")
    return records


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A new event for `Outbox.add_new`: its type, its data (a model), its Kafka key, its
    subject, and the trace context it was produced under (None: the one current when added)."""

    type: str
    data: BaseModel
    key: str | bytes | None
    subject: str | None = None
    context: otel_context.Context | None = None


def _checked(
    event_type: str, topic: str, message: KafkaMessage, context: otel_context.Context | None
) -> Record:
    """The record of a message, with its trace headers, refused when larger than Kafka takes."""
    headers = inject_headers(message.headers, context=context)
    return _sized(event_type, (topic, message.key, message.value, headers))


def _sized(event_type: str, record: Record) -> Record:
    """The record, refused (EventTooLarge) when larger than Kafka takes."""
    _, key, value, headers = record
    size = len(value or b"") + len(key or b"")
    size += sum(len(k) + len(v) for k, v in headers)
    if size > MAX_EVENT_BYTES:
        raise EventTooLarge(
            f"{event_type} would be {size} bytes on Kafka, over the {MAX_EVENT_BYTES} an event"
            " may have"
        )
    return record


def _packed_row(records: Sequence[Record], created_at: datetime) -> dict[str, Any]:
    """The outbox row of several records (named after the first event it holds)."""
    return {
        "event_id": dict(records[0][3])["ce_id"].decode(),
        "event_type": PACKED_EVENT_TYPE,
        "topic": "",
        "key": None,
        "value": None,
        "headers": [],
        "created_at": created_at,
        "batch": pack_records(records),
        "batch_count": len(records),
    }


def _row_of(event_id: str, event_type: str, record: Record, created_at: datetime) -> dict[str, Any]:
    """The outbox row of one event's record."""
    topic, key, value, headers = record
    return {
        "event_id": event_id,
        "event_type": event_type,
        "topic": topic,
        "key": key,
        "value": value,
        "headers": [[k, v.decode()] for k, v in headers],
        "created_at": created_at,
    }


class EventTables:
    """The outbox and processed-event tables, declared in a service's own metadata."""

    def __init__(self, metadata: MetaData) -> None:
        big_id = BigInteger().with_variant(Integer(), "sqlite")
        self.outbox = Table(
            "atlas_outbox",
            metadata,
            Column("id", big_id, primary_key=True, autoincrement=True),
            Column("event_id", String(200), nullable=False, unique=True),
            Column("event_type", String(200), nullable=False),
            Column("topic", String(249), nullable=False),
            Column("key", LargeBinary, nullable=True),
            Column("value", LargeBinary, nullable=True),
            Column("headers", JSON, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("published_at", DateTime(timezone=True), nullable=True),
            # A packed row: the records of many events (`pack_records`), `batch_count` of them;
            # its own topic, key, value and headers are empty (see `Outbox.add_many`).
            Column("batch", LargeBinary, nullable=True),
            Column("batch_count", Integer, nullable=True),
            Index(
                "ix_atlas_outbox_unpublished",
                "id",
                postgresql_where=text("published_at IS NULL"),
                sqlite_where=text("published_at IS NULL"),
            ),
        )
        self.processed = Table(
            "atlas_processed_events",
            metadata,
            Column("consumer", String(200), primary_key=True),
            Column("event_id", String(200), primary_key=True),
            Column("event_type", String(200), nullable=False),
            Column("topic", String(249), nullable=False),
            Column("partition", Integer, nullable=False),
            Column("offset", BigInteger, nullable=False),
            Column("processed_at", DateTime(timezone=True), nullable=False),
        )


class OutboxError(Exception):
    """An event that must not enter the outbox (unknown type, wrong topic, invalid data)."""


class EventTooLarge(OutboxError, PermanentError, PayloadTooLarge):
    """An event larger than Kafka takes: its transaction rolls back, a consumer dead-letters the
    message that caused it (no retry makes it smaller), an API answers 413."""


class Outbox:
    """Adds events to the outbox inside the caller's transaction and wakes relays on commit."""

    def __init__(self, tables: EventTables, registry: TopicRegistry = REGISTRY) -> None:
        self.tables = tables
        self.registry = registry
        self._wakers: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()

    async def add(
        self,
        session: AsyncSession,
        event: CloudEvent,
        *,
        key: str | bytes | None,
        topic: str | None = None,
    ) -> None:
        """Queue `event` for publication when `session` commits; validated against the registry."""
        declared = self.registry.topic_for_event(event.type).name
        if topic is not None and topic != declared:
            raise OutboxError(f"{event.type} belongs on {declared}, not {topic}")
        await session.execute(insert(self.tables.outbox).values(self._row(event, key, declared)))
        self._pending(session)

    async def add_many(
        self,
        session: AsyncSession,
        events: Sequence[tuple[CloudEvent, str | bytes | None]],
        *,
        contexts: Sequence[otel_context.Context | None] | None = None,
        models: Sequence[BaseModel | None] | None = None,
        packed: bool = False,
    ) -> int:
        """Queue (event, key) pairs in order with one bulk insert; validated like `add`.

        `contexts`, one per event, is the trace context each event was produced under (events
        queued during a batch and written at its end keep their own trace); None: the current.
        `models`, one per event (or None), is the model instance the event's data was dumped
        from: an instance of exactly the model the registry declares for the type was validated
        when it was built, so its data is not validated a second time.

        `packed`: the events go into one row (`pack_records`), published in order like the
        rows of single events. A stream batch writes thousands of events; one row each, then an
        update each once published, was most of the database's work in a burst.
        """
        if not events:
            return 0
        if contexts is not None and len(contexts) != len(events):
            raise ValueError("add_many needs one trace context per event")
        if models is not None and len(models) != len(events):
            raise ValueError("add_many needs one model (or None) per event")
        now = _utcnow()
        records = [
            self._record(
                event,
                key,
                self.registry.topic_for_event(event.type).name,
                context=None if contexts is None else contexts[i],
                model=None if models is None else models[i],
            )
            for i, (event, key) in enumerate(events)
        ]
        rows: list[dict[str, Any]]
        if packed and len(records) > 1:
            rows = [_packed_row(records, now)]
        else:
            rows = [
                _row_of(event.id, event.type, record, now)
                for (event, _), record in zip(events, records, strict=True)
            ]
        await bulk_insert(session, self.tables.outbox, rows)
        self._pending(session)
        return len(records)

    async def add_new(
        self,
        session: AsyncSession,
        source: str,
        events: Sequence[NewEvent],
        *,
        packed: bool = False,
    ) -> int:
        """Queue new events of `source` whose data are models, in order, with one bulk insert.

        As `add_many`, but each event is written straight to its Kafka record
        (`cloudevents.new_message`): no CloudEvent, no JSON values in between. Data of exactly
        the model its type declares was validated when built; other data is validated here.
        """
        if not events:
            return 0
        # A delivery's events share its trace context: its headers are written once.
        carried: dict[int, tuple[otel_context.Context | None, list[tuple[str, bytes]]]] = {}
        writer = NewMessages(source)  # the events of one unit of work share its time
        records = []
        for new in events:
            known = carried.get(id(new.context))
            if known is None or known[0] is not new.context:
                known = carried[id(new.context)] = (new.context, trace_headers(new.context))
            records.append(self._new_record(writer, new, known[1]))
        rows: list[dict[str, Any]] = []
        now = _utcnow()
        if packed and len(records) > 1:
            rows.append(_packed_row(records, now))
        else:
            for event, record in zip(events, records, strict=True):
                headers = dict(record[3])
                rows.append(_row_of(headers["ce_id"].decode(), event.type, record, now))
        await bulk_insert(session, self.tables.outbox, rows)
        self._pending(session)
        return len(records)

    def _new_record(
        self, writer: NewMessages, event: NewEvent, carrier: list[tuple[str, bytes]]
    ) -> Record:
        declared = self.registry.event_type(event.type)
        if type(event.data) is not declared.data:
            declared.data.model_validate(event.data.model_dump(mode="json"))
        topic = self.registry.topic_for_event(event.type).name
        message = writer.message(event.type, event.data, event.key, subject=event.subject)
        return _sized(event.type, (topic, message.key, message.value, message.headers + carrier))

    def _row(self, event: CloudEvent, key: str | bytes | None, topic: str) -> dict[str, Any]:
        """The outbox row of one validated event."""
        return _row_of(event.id, event.type, self._record(event, key, topic), _utcnow())

    def _record(
        self,
        event: CloudEvent,
        key: str | bytes | None,
        topic: str,
        *,
        context: otel_context.Context | None = None,
        model: BaseModel | None = None,
    ) -> Record:
        """The Kafka record of a validated event: CloudEvents binary encoding plus trace
        headers."""
        if model is None or type(model) is not self.registry.event_type(event.type).data:
            self.registry.validate(event.type, event.data)
        return _checked(event.type, topic, to_kafka(event, key), context)

    def _pending(self, session: AsyncSession) -> None:
        pending: set[Outbox] = session.sync_session.info.setdefault(_PENDING_FLAG, set())
        pending.add(self)

    def _committed(self) -> None:
        for relay in list(self._wakers):
            relay.wake()

    def _register(self, relay: OutboxRelay) -> None:
        self._wakers.add(relay)


async def outbox_records(
    session: AsyncSession, tables: EventTables, *, pending: bool = False
) -> list[Record]:
    """Every record in the outbox (only those not yet published with `pending`), in order,
    packed rows unpacked: what the relays publish, for tests and inspection."""
    table = tables.outbox
    query = select(
        table.c.topic, table.c.key, table.c.value, table.c.headers, table.c.batch
    ).order_by(table.c.id)
    if pending:
        query = query.where(table.c.published_at.is_(None))
    return [r for row in (await session.execute(query)).all() for r in _records_of(row)]


def _records_of(row: Any) -> list[Record]:
    """The records an outbox row holds: its packed ones, or its own."""
    if row.batch is not None:
        return unpack_records(row.batch)
    return [(row.topic, row.key, row.value, [(k, v.encode()) for k, v in row.headers])]


@event.listens_for(Session, "after_commit")
def _wake_relays_after_commit(session: Session) -> None:
    for outbox in session.info.pop(_PENDING_FLAG, ()):
        outbox._committed()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_FLAG, None)


class OutboxRelay:
    """Publishes committed outbox rows in order, marking a batch once Kafka acknowledged it."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        *,
        bootstrap: str,
        client_id: str,
        batch_size: int = 2000,
        poll_seconds: float = 1.0,
        producer: AIOKafkaProducer | None = None,
        kafka_options: KafkaOptions | None = None,
        hold_seconds: float = 120.0,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._kafka_options = kafka_options
        self._producer = producer
        self._own_producer = producer is None
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._listener: Any = None
        self._relisten_at = 0.0
        self._held_elsewhere = False  # another relay was publishing at our last attempt
        self._partitioner = KeyPartitioner()
        self._more = False  # the last batch left committed rows behind it
        self.hold_seconds = hold_seconds
        outbox._register(self)

    def wake(self) -> None:
        """Ask the relay to look for rows now (safe to call from any point in the loop's thread)."""
        self._wakeup.set()

    async def publish_pending(self) -> int:
        """Publish one batch of committed rows; return how many were published.

        Returns 0 without reading the outbox while another relay is publishing: two relays
        sending consecutive batches at once would interleave them on a partition, and a key's
        later event could overtake an earlier one (a request's close before its open).
        """
        table = self.outbox.tables.outbox
        producer = await self._ensure_producer()
        async with self.db.transaction() as session:
            self._held_elsewhere = not self.db.is_sqlite and not await claim_publishing(
                session, self.hold_seconds
            )
            if self._held_elsewhere:
                return 0
            # The oldest rows, up to batch_size records (a packed row counts its records; one
            # that holds more is published alone), then what they hold.
            waiting = (
                await session.execute(
                    select(table.c.id, table.c.batch_count)
                    .where(table.c.published_at.is_(None))
                    .order_by(table.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            ids: list[int] = []
            count = 0
            for row in waiting:
                count += row.batch_count or 1
                if ids and count > self.batch_size:
                    break
                ids.append(row.id)
            self._more = len(ids) < len(waiting) or len(waiting) == self.batch_size
            if not ids:
                return 0
            rows = (
                await session.execute(
                    select(table.c.id, table.c.topic, table.c.key, table.c.value)
                    .add_columns(table.c.headers, table.c.created_at, table.c.batch)
                    .where(among(session, table.c.id, ids))
                    .order_by(table.c.id)
                )
            ).all()
            # Queue the whole batch in id order (each partition's records keep it), then wait for
            # every acknowledgement before marking the rows.
            records = [record for row in rows for record in _records_of(row)]
            await asyncio.gather(*await send_in_batches(producer, records, self._partitioner))
            now = _utcnow()
            await session.execute(
                update(table).where(among(session, table.c.id, ids)).values(published_at=now)
            )
        self._observe(rows, records, now)
        return len(records)

    @staticmethod
    def _observe(rows: Sequence[Any], records: Sequence[Record], now: datetime) -> None:
        for row in rows:
            created = (
                row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
            )
            PUBLISH_LAG.observe(max(0.0, (now - created).total_seconds()))
        per_topic: dict[str, int] = {}
        for topic, _, _, _ in records:
            per_topic[topic] = per_topic.get(topic, 0) + 1
        for topic, count in per_topic.items():
            PUBLISHED.labels(topic).inc(count)

    async def run(self) -> None:
        """Publish until stopped: drain, then sleep until a commit, a NOTIFY or the poll."""
        await self._listen()
        backoff = 0.1
        try:
            while not self._stopping:
                self._wakeup.clear()
                try:
                    while await self.publish_pending() and self._more:
                        pass
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Kafka or the database is away: nothing was marked, so retry later.
                    RELAY_FAILURES.labels(type(exc).__name__).inc()
                    log.warning("outbox_relay_retry", error=repr(exc), retry_in=backoff)
                    await self._reset_producer()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                if self._stopping:
                    break
                await self._keep_listening()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._idle_timeout())
        finally:
            await self._close()

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    def _idle_timeout(self) -> float:
        # With NOTIFY the poll only guards against a lost notification (e.g. a reconnect); while
        # another relay publishes, poll so as to take over soon if it stops.
        if self._listener is None or self._held_elsewhere:
            return self.poll_seconds
        return max(self.poll_seconds, 30.0)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = await started(
                make_producer(
                    self._bootstrap,
                    client_id=self._client_id,
                    max_batch_size=RELAY_MAX_BATCH_BYTES,
                    kafka_options=self._kafka_options,
                )
            )
        return self._producer

    async def _reset_producer(self) -> None:
        """Drop our producer after a failed batch: an idempotent producer whose batch failed
        mid-way (a broker restart) keeps failing with OutOfOrderSequenceNumber; a new one gets a
        new producer id. The rows were not marked, so the new producer sends them again."""
        if self._producer is None or not self._own_producer:
            return
        producer, self._producer = self._producer, None
        with contextlib.suppress(Exception):
            await producer.stop()

    async def _listen(self) -> None:
        """LISTEN for the outbox trigger's NOTIFY on PostgreSQL, so other processes wake us."""
        if self.db.is_sqlite:
            return
        try:
            import asyncpg

            url = self.db.engine.url.set(drivername="postgresql")
            conn = await asyncpg.connect(url.render_as_string(hide_password=False))
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self.wake())
            # A lost connection (database restarted) wakes the loop, which listens again.
            conn.add_termination_listener(lambda *_: self.wake())
            self._listener = conn
        except Exception as exc:
            self._relisten_at = time.monotonic() + RELISTEN_SECONDS
            log.warning("outbox_listen_unavailable", error=repr(exc))

    async def _keep_listening(self) -> None:
        """Replace a LISTEN connection the database dropped; until then, poll at poll_seconds."""
        if self._listener is not None and self._listener.is_closed():
            self._listener = None
            log.warning("outbox_listen_lost")
        if (
            self._listener is None
            and not self.db.is_sqlite
            and time.monotonic() >= self._relisten_at
        ):
            await self._listen()
            if self._listener is not None:
                log.info("outbox_listen_restored")

    async def _close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._producer is not None and self._own_producer:
            await self._producer.stop()
            self._producer = None


async def claim_publishing(session: AsyncSession, hold_seconds: float) -> bool:
    """Take the service's publishing lock for this transaction; False if another relay has it.

    A relay whose node is lost (its connection not closed) would keep the lock until TCP gives
    up, hours later, and every event of the service would wait: a transaction that holds it and
    stays idle for `hold_seconds` (a batch waits for Kafka's acknowledgements between its two
    statements) has its session ended by PostgreSQL, which frees the lock.
    """
    if not await try_advisory_xact_lock(session, _PUBLISH_LOCK_NAME):
        return False
    await session.execute(
        text("SELECT set_config('idle_in_transaction_session_timeout', :timeout, true)"),
        {"timeout": f"{max(1, round(hold_seconds * 1000))}ms"},
    )
    return True


def notify_trigger_sql() -> list[str]:
    """PostgreSQL statements creating the NOTIFY trigger on the outbox (used by migrations)."""
    return [
        f"""
        CREATE OR REPLACE FUNCTION atlas_outbox_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """,
        "DROP TRIGGER IF EXISTS atlas_outbox_notify ON atlas_outbox",
        """
        CREATE TRIGGER atlas_outbox_notify AFTER INSERT ON atlas_outbox
        FOR EACH STATEMENT EXECUTE FUNCTION atlas_outbox_notify()
        """,
    ]
