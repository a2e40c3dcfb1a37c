"""The idempotent consumer runner shared by every service.

For each message: decode the CloudEvent, validate its data against the registry, then in one
database transaction check the processed-event record, apply the handler and write the record;
commit; only then commit the Kafka offset. A handler error is retried with backoff a bounded number
of times; what still fails, or cannot be decoded or validated at all, goes to `<topic>.dlq` with
the reason, the original headers and the consumer's name, and consumption goes on.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from opentelemetry import trace
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.cloudevents import CloudEvent, InvalidEvent, from_kafka
from atlas_events.db import Database, bulk_insert, plan_for_each_batch
from atlas_events.errors import PermanentError
from atlas_events.kafka import KafkaOptions, make_producer, started
from atlas_events.outbox import EventTables
from atlas_events.registry import (
    DLQ_MAX_MESSAGE_BYTES,
    DLQ_SUFFIX,
    REGISTRY,
    TopicRegistry,
    UnknownEventType,
)
from atlas_events.tracing import consume_span

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)

DLQ_REASON = "atlas_dlq_reason"
DLQ_CONSUMER = "atlas_dlq_consumer"
DLQ_TOPIC = "atlas_dlq_topic"
DLQ_PARTITION = "atlas_dlq_partition"
DLQ_OFFSET = "atlas_dlq_offset"
DLQ_ATTEMPTS = "atlas_dlq_attempts"
DLQ_FAILED_AT = "atlas_dlq_failed_at"
DLQ_HEADERS = frozenset(
    {DLQ_REASON, DLQ_CONSUMER, DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET, DLQ_ATTEMPTS, DLQ_FAILED_AT}
)
# A reason is a header: a validation error listing thousands of problems must not make the DLQ
# message larger than the DLQ takes.
MAX_REASON_CHARS = 4000

CONSUMED = Counter(
    "atlas_consumer_messages_total",
    "Messages handled by a consumer, by outcome",
    ["consumer", "topic", "outcome"],
)


@dataclass(frozen=True)
class Delivery:
    """What a handler gets: the event, its validated data and where it came from."""

    event: CloudEvent
    data: BaseModel | None
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)


Handler = Callable[[AsyncSession, Delivery], Awaitable[None]]
# Applies consecutive deliveries of one type together (transaction_batch mode); it must give each
# delivery its own span (`delivery_span`) so what it emits carries that delivery's trace.
BatchHandler = Callable[[AsyncSession, Sequence[Delivery]], Awaitable[None]]
AfterCommitHook = Callable[[Delivery], Awaitable[None]]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Wait for the message in hand to finish, then commit what is done before letting go.
        async with self._runner._processing:
            await self._runner._commit_offsets()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("consumer_assigned", consumer=self._runner.name, partitions=len(assigned))


class ConsumerRunner:
    """Consumes topics with one consumer group, applying each event exactly once to the database."""

    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        handlers: Mapping[str, Handler],
        db: Database,
        tables: EventTables,
        bootstrap: str,
        registry: TopicRegistry = REGISTRY,
        max_attempts: int = 4,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        max_batch: int = 200,
        after_db_commit: AfterCommitHook | None = None,
        kafka_options: KafkaOptions | None = None,
        transaction_batch: int = 1,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
    ) -> None:
        self.name = name
        self.topics = list(topics)
        self.handlers = dict(handlers)
        self.db = db
        self.tables = tables
        self.registry = registry
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_batch = max_batch
        # Opt-in: apply up to this many messages of a poll in one transaction (one processed-event
        # query, one commit); a batch that fails is rolled back and retried message by message.
        self.transaction_batch = max(1, transaction_batch)
        # In that mode, runs of consecutive events of these types go to one call each.
        self.batch_handlers = dict(batch_handlers or {})
        self._bootstrap = bootstrap
        self._kafka_options = dict(kafka_options or {})
        self._after_db_commit = after_db_commit
        self._dead_letters = DeadLetterWriter(
            bootstrap,
            client_id=f"{name}-dlq",
            kafka_options=self._kafka_options,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._processing = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.started = asyncio.Event()

    async def run(self) -> None:
        """Consume until `stop()`; each batch's offsets are committed after its database commits."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.name,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **self._kafka_options,
        )
        consumer.subscribe(self.topics, listener=_Rebalance(self))
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()  # no broker yet: release the client, the caller retries
            raise
        self._consumer = consumer
        self.started.set()
        log.info("consumer_started", consumer=self.name, topics=self.topics)
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=self.max_batch)
                async with self._processing:
                    for tp, records in batches.items():
                        if self.transaction_batch > 1:
                            step = self.transaction_batch
                            for start in range(0, len(records), step):
                                if self._stopping.is_set():
                                    break
                                chunk = records[start : start + step]
                                await self._handle_batch(chunk)
                                self._pending[tp] = chunk[-1].offset + 1
                            continue
                        for record in records:
                            if self._stopping.is_set():
                                break
                            await self._handle(record)
                            self._pending[tp] = record.offset + 1
                    await self._commit_offsets()
        finally:
            async with self._processing:
                await self._commit_offsets()
            await consumer.stop()
            self._consumer = None
            await self._dead_letters.stop()
            log.info("consumer_stopped", consumer=self.name)

    async def stop(self) -> None:
        """Finish the message in hand, commit, leave the group."""
        self._stopping.set()

    async def _commit_offsets(self) -> None:
        if not self._pending or self._consumer is None:
            return
        offsets = {tp: OffsetAndMetadata(offset, "") for tp, offset in self._pending.items()}
        self._pending = {}
        await self._consumer.commit(offsets)

    async def _delivery(
        self, record: ConsumerRecord[bytes, bytes]
    ) -> tuple[Delivery, Handler] | None:
        """The record decoded and validated, with its handler; None when it went to the DLQ
        (undecodable, invalid) or has no handler here (ignored)."""
        headers = list(record.headers or ())
        try:
            event = from_kafka(headers, record.value)
            data = self._validate(event)
        except (InvalidEvent, ValidationError, UnknownEventType) as exc:
            await self._dead_letter(record, failure_reason(exc), attempts=0)
            return None
        handler = self.handlers.get(event.type)
        if handler is None:
            CONSUMED.labels(self.name, record.topic, "ignored").inc()
            return None
        delivery = Delivery(
            event=event,
            data=data,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            headers=headers,
        )
        return delivery, handler

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        found = await self._delivery(record)
        if found is None:
            return
        delivery, handler = found
        with self._span(delivery):
            event = delivery.event
            structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)
            try:
                await self._apply_with_retries(record, delivery, handler)
            finally:
                structlog.contextvars.unbind_contextvars("event_id", "event_type")

    async def _handle_batch(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply records of one partition in one transaction; on failure, one by one as usual."""
        work: list[tuple[ConsumerRecord[bytes, bytes], Delivery, Handler]] = []
        for record in records:
            found = await self._delivery(record)
            if found is not None:
                work.append((record, *found))
        if not work:
            return
        try:
            applied = await self._apply_batch_once(work)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "consumer_batch_failed", consumer=self.name, size=len(work), error=repr(exc)
            )
            for record, delivery, handler in work:
                with self._span(delivery):
                    await self._apply_with_retries(record, delivery, handler)
            return
        for record, delivery, _ in work:
            fresh = delivery.event.id in applied
            CONSUMED.labels(self.name, record.topic, "applied" if fresh else "duplicate").inc()
            if fresh and self._after_db_commit is not None:
                await self._after_db_commit(delivery)

    async def _apply_batch_once(
        self, work: Sequence[tuple[ConsumerRecord[bytes, bytes], Delivery, Handler]]
    ) -> set[str]:
        """One transaction: skip what was processed, apply, record; returns the ids applied."""
        processed = self.tables.processed
        applied: set[str] = set()
        async with self.db.transaction() as session:
            await plan_for_each_batch(session)
            seen = set(
                (
                    await session.scalars(
                        select(processed.c.event_id).where(
                            processed.c.consumer == self.name,
                            processed.c.event_id.in_({d.event.id for _, d, _ in work}),
                        )
                    )
                ).all()
            )
            rows = []
            fresh: list[tuple[Delivery, Handler]] = []
            for _, delivery, handler in work:
                if delivery.event.id in seen or delivery.event.id in applied:
                    continue
                applied.add(delivery.event.id)
                fresh.append((delivery, handler))
            run: list[Delivery] = []
            for i, (delivery, handler) in enumerate(fresh):
                rows.append(
                    {
                        "consumer": self.name,
                        "event_id": delivery.event.id,
                        "event_type": delivery.event.type,
                        "topic": delivery.topic,
                        "partition": delivery.partition,
                        "offset": delivery.offset,
                        "processed_at": datetime.now(UTC),
                    }
                )
                together = self.batch_handlers.get(delivery.event.type)
                if together is not None:
                    run.append(delivery)
                    following = fresh[i + 1][0].event.type if i + 1 < len(fresh) else None
                    if following != delivery.event.type:  # the run ends: apply it in order
                        await together(session, run)
                        run = []
                    continue
                with self._span(delivery):
                    structlog.contextvars.bind_contextvars(
                        event_id=delivery.event.id, event_type=delivery.event.type
                    )
                    try:
                        await handler(session, delivery)
                    finally:
                        structlog.contextvars.unbind_contextvars("event_id", "event_type")
            if rows:
                await bulk_insert(session, processed, rows)
        return applied

    def _span(self, delivery: Delivery) -> AbstractContextManager[trace.Span]:
        return delivery_span(delivery, self.name)

    def _validate(self, event: CloudEvent) -> BaseModel | None:
        topic = self.registry.topic_for_event(event.type)
        if topic.name not in self.topics and not _is_same_stream(topic.name, self.topics):
            raise UnknownEventType(f"{event.type} is not an event of the consumed topics")
        return self.registry.validate(event.type, event.data)

    async def _apply_with_retries(
        self, record: ConsumerRecord[bytes, bytes], delivery: Delivery, handler: Handler
    ) -> None:
        delay = self.backoff_initial
        attempt = 0
        while attempt < self.max_attempts:
            try:
                applied = await self._apply_once(delivery, handler)
            except PermanentError as exc:
                await self._dead_letter(record, failure_reason(exc), attempts=attempt + 1)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_connection_error(exc):
                    # The database is away (restart, failover): the event is fine, so wait for
                    # the database however long it takes instead of parking a valid event.
                    log.warning(
                        "consumer_database_unavailable", consumer=self.name, error=repr(exc)
                    )
                    await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
                    delay = min(delay * 2, self.backoff_max)
                    continue
                attempt += 1
                if attempt == self.max_attempts:
                    reason = f"failed after {attempt} attempts: {failure_reason(exc)}"
                    await self._dead_letter(record, reason, attempts=attempt)
                    return
                log.warning("consumer_retry", consumer=self.name, attempt=attempt, error=repr(exc))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
                delay = min(delay * 2, self.backoff_max)
                continue
            CONSUMED.labels(self.name, record.topic, "applied" if applied else "duplicate").inc()
            if self._after_db_commit is not None:
                await self._after_db_commit(delivery)
            return

    async def _apply_once(self, delivery: Delivery, handler: Handler) -> bool:
        """Apply the handler and record the event in one transaction; False if already applied."""
        processed = self.tables.processed
        async with self.db.transaction() as session:
            seen = await session.scalar(
                select(processed.c.event_id).where(
                    processed.c.consumer == self.name,
                    processed.c.event_id == delivery.event.id,
                )
            )
            if seen is not None:
                return False
            await handler(session, delivery)
            await session.execute(
                insert(processed).values(
                    consumer=self.name,
                    event_id=delivery.event.id,
                    event_type=delivery.event.type,
                    topic=delivery.topic,
                    partition=delivery.partition,
                    offset=delivery.offset,
                    processed_at=datetime.now(UTC),
                )
            )
        return True

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], reason: str, *, attempts: int
    ) -> None:
        await self._dead_letters.park(record, reason, consumer=self.name, attempts=attempts)
        CONSUMED.labels(self.name, record.topic, "dead_lettered").inc()


class ConsumedRecord(Protocol):
    """What a dead-letter writer needs of a consumed record (aiokafka's, or faust's message)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class DeadLetterWriter:
    """Parks consumed messages on `<topic>.dlq`: the original key, value and headers, plus which
    consumer failed, why and where from in the DLQ headers. Retries until Kafka takes the message
    (never drops it).

    DLQ topics accept messages up to DLQ_MAX_MESSAGE_BYTES, twice what a topic takes, so any
    message its own topic accepted still fits once the DLQ headers are added.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        kafka_options: KafkaOptions | None = None,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
    ) -> None:
        self.client_id = client_id
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._bootstrap = bootstrap
        self._kafka_options = dict(kafka_options or {})
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()  # callers may overlap: start one producer, not several

    async def park(
        self, record: ConsumedRecord, reason: str, *, consumer: str, attempts: int
    ) -> None:
        headers = [(k, v) for k, v in record.headers or () if k not in DLQ_HEADERS]
        headers += [
            (DLQ_REASON, reason.encode()),
            (DLQ_CONSUMER, consumer.encode()),
            (DLQ_TOPIC, record.topic.encode()),
            (DLQ_PARTITION, str(record.partition).encode()),
            (DLQ_OFFSET, str(record.offset).encode()),
            (DLQ_ATTEMPTS, str(attempts).encode()),
            (DLQ_FAILED_AT, datetime.now(UTC).isoformat().encode()),
        ]
        dlq = f"{record.topic}{DLQ_SUFFIX}"
        delay = self.backoff_initial
        while True:
            try:
                producer = await self._ensure_producer()
                await producer.send_and_wait(
                    dlq, key=record.key, value=record.value, headers=headers
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("dlq_publish_retry", consumer=consumer, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
        log.warning(
            "consumer_dead_lettered",
            consumer=consumer,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )

    async def stop(self) -> None:
        async with self._starting:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                self._producer = await started(
                    make_producer(
                        self._bootstrap,
                        client_id=self.client_id,
                        kafka_options=self._kafka_options,
                        max_request_size=DLQ_MAX_MESSAGE_BYTES,
                    )
                )
            return self._producer


_CONNECTION_ERROR_NAMES = frozenset(
    {
        # asyncpg: the server is starting, shutting down or dropped the connection.
        "PostgresConnectionError",
        "OperatorInterventionError",
        "ConnectionDoesNotExistError",
    }
)


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database connection failed, not the event."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError | DisconnectionError):
            return True
        if type(current) is OSError and "connect call failed" in str(current).lower():
            return True  # asyncio's create_connection when every address refused
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        names = {cls.__name__ for cls in type(current).__mro__}
        if type(current).__module__.startswith("asyncpg") and names & _CONNECTION_ERROR_NAMES:
            return True
        current = current.__cause__ or current.__context__
    return False


def delivery_span(delivery: Delivery, consumer: str) -> AbstractContextManager[trace.Span]:
    """The consumer span of one delivery, child of the trace its message carries (current
    while the delivery is applied, so the outbox events it causes carry that trace on)."""
    return consume_span(
        tracer,
        f"{delivery.topic} process",
        delivery.headers,
        {
            "messaging.consumer.group.name": consumer,
            "cloudevents.event_type": delivery.event.type,
        },
    )


def _is_same_stream(topic: str, consumed: Sequence[str]) -> bool:
    """Replaying a DLQ: events read from `<topic>.dlq` are events of `<topic>`."""
    return any(c == f"{topic}.dlq" for c in consumed)


def failure_reason(exc: BaseException) -> str:
    """Why a message is dead-lettered, in words, at most MAX_REASON_CHARS long."""
    if isinstance(exc, InvalidEvent):
        reason = f"invalid event: {exc}"
    elif isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        reason = f"invalid data: {problems}"
    elif isinstance(exc, UnknownEventType):
        reason = f"unknown event type: {exc.args[0] if exc.args else exc}"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    if len(reason) > MAX_REASON_CHARS:
        cut = len(reason) - MAX_REASON_CHARS
        reason = f"{reason[:MAX_REASON_CHARS]}… ({cut} more characters)"
    return reason


def dlq_reason(headers: Sequence[tuple[str, bytes]]) -> str | None:
    """The reason header of a DLQ message, for replay tools and tests."""
    for key, value in headers:
        if key == DLQ_REASON:
            return value.decode()
    return None
