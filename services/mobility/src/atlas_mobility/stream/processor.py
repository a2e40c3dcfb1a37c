"""The faust app: the HR stage (decision and handlers in one transaction), request status, spaces.

Follows ARCHITECTURE.md's faust rules: at-least-once (never exactly_once), one concurrent
instance per agent, no faust tables (state lives in the service's database). Each agent takes
events in batches without acknowledging them (`noack_take`), applies a batch in one database
transaction with its outbox events, commits, and only then acknowledges, so faust commits an
offset only for what is in the database. A batch that fails is retried event by event with
backoff; an event that still fails, or that cannot be decoded or validated, goes to
`<topic>.dlq` with the reason in a header (written by the shared DeadLetterWriter), and the
batch goes on. Handlers are idempotent (revision guards on the handler topics, processed-event
records for the request events), so the events of a batch re-read after a crash change nothing
twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import structlog
from faust.exceptions import AlreadyConfiguredWarning
from opentelemetry import trace
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.cloudevents import CloudEvent, InvalidEvent, from_kafka
from atlas_events.consumer import DeadLetterWriter, failure_reason, is_connection_error
from atlas_events.db import Database, bulk_insert, plan_for_each_batch
from atlas_events.errors import PermanentError
from atlas_events.kafka import client_options, faust_credentials
from atlas_events.outbox import Outbox
from atlas_events.registry import UnknownEventType
from atlas_events.schemas import catalog, hr, requests
from atlas_events.tracing import batch_links, consume_span
from atlas_mobility.cases.service import CaseHandler, request_id_for
from atlas_mobility.config import MobilitySettings
from atlas_mobility.context import MobilityContext
from atlas_mobility.dossiers.service import DossierDecision
from atlas_mobility.events import EventSink
from atlas_mobility.missions.service import apply_missions
from atlas_mobility.spaces.service import SpaceDirectory

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)

STREAM_EVENTS = Counter(
    "atlas_mobility_stream_events_total",
    "Events handled by the mobility stream agents, by outcome",
    ["agent", "outcome"],
)
BATCH_SECONDS = Histogram(
    "atlas_mobility_stream_batch_seconds",
    "Time to apply one batch of a stream agent",
    ["agent"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


@dataclass(frozen=True)
class RawRecord:
    """A Kafka record as faust handed it over."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Delivery:
    """A decoded, validated event and the record it came from."""

    event: CloudEvent
    data: BaseModel
    raw: RawRecord

    @property
    def topic(self) -> str:
        return self.raw.topic


# Applies a batch of deliveries in the caller's transaction, queueing outbox events in the sink.
BatchApply = Callable[[AsyncSession, EventSink, Sequence[Delivery]], Awaitable[None]]


@dataclass(frozen=True)
class AgentSpec:
    name: str
    topic: str
    types: frozenset[str]
    apply: BatchApply
    dedupe: bool
    # With dedupe: deliveries idempotent by themselves, neither looked up nor recorded.
    self_guarded: Callable[[Delivery], bool] | None = None


class StreamProcessor:
    """Builds and runs the faust app of one worker process."""

    def __init__(
        self,
        *,
        settings: MobilitySettings,
        context: MobilityContext,
        db: Database,
        outbox: Outbox,
    ) -> None:
        self.settings = settings
        self.context = context
        self.db = db
        self.outbox = outbox
        self.tables = outbox.tables
        self.app: faust.App | None = None
        self._dead_letters = DeadLetterWriter(
            settings.kafka_bootstrap,
            client_id="mobility.stream-dlq",
            kafka_options=client_options(settings),
        )
        # One lock per agent: agents overlap (each batch is its own transaction, its rows locked
        # in a sorted order), and `stop` takes them all to let the batches in hand finish.
        self._busy: dict[str, asyncio.Lock] = {}
        self._stopping = False

    # ---- what each agent does -------------------------------------------------------------------

    def specs(self) -> list[AgentSpec]:
        topics = self.context.topics
        registry = self.context.registry
        return [
            AgentSpec(
                "ingest",
                topics.hr,
                frozenset({hr.MUTATION_ANNOUNCED, hr.MUTATION_AMENDED, hr.MUTATION_CANCELLED}),
                self._apply_hr,
                dedupe=False,  # the revision is the natural key; redeliveries are recorded
            ),
            AgentSpec(
                "missions",
                topics.missions,
                frozenset(e.type for e in registry.topic(topics.missions).events),
                apply_missions(self.context),
                dedupe=False,  # (mission_id, revision) is the natural key, as for mutations
            ),
            AgentSpec(
                "requests",
                topics.requests,
                frozenset({requests.REQUEST_SUBMITTED, requests.REQUEST_STATUS_CHANGED}),
                self._apply_requests,
                dedupe=True,
                # A case holds its request's id from the start: the submission of the request it
                # asked for only confirms it, guarded in the statement itself (see confirm).
                self_guarded=_confirms_own_request,
            ),
            AgentSpec(
                "spaces",
                topics.spaces,
                frozenset({catalog.SPACE_SNAPSHOT, catalog.SPACE_CRISIS_MODE_CHANGED}),
                self._apply_spaces,
                dedupe=False,  # versions order the snapshots
            ),
        ]

    async def _apply_hr(
        self, session: AsyncSession, sink: EventSink, deliveries: Sequence[Delivery]
    ) -> None:
        decision = DossierDecision(session, self.context, sink)
        datas = [d.data for d in deliveries]
        await decision.prefetch(datas)  # type: ignore[arg-type]
        links = batch_links()
        for delivery in deliveries:
            # A case's commands travel under its mutation's HR partition: they stay in order.
            sink.command_key = f"hr:{delivery.raw.partition}"
            with _delivery_span(delivery, links):
                outcome = await decision.apply(delivery.event, delivery.data)  # type: ignore[arg-type]
            if outcome != "applied":  # applied ones are counted with the batch
                STREAM_EVENTS.labels("ingest", outcome).inc()
        await decision.flush()

    async def _apply_requests(
        self, session: AsyncSession, sink: EventSink, deliveries: Sequence[Delivery]
    ) -> None:
        handler = CaseHandler(session, self.context, sink)
        links = batch_links()
        confirmations = [d for d in deliveries if _confirms_own_request(d)]
        if confirmations:
            await handler.confirm_requests([d.data for d in confirmations])  # type: ignore[misc]
            deliveries = [d for d in deliveries if not _confirms_own_request(d)]
        # A status change may close the dossier: its dossier is locked first, as the HR stage
        # locks dossiers before cases, so the two cannot deadlock.
        await handler.lock_dossiers(
            [
                d.data.case_id
                for d in deliveries
                if isinstance(d.data, requests.RequestStatusChanged) and d.data.case_id
            ]
        )
        await handler.prefetch(
            [d.data.case_id for d in deliveries if getattr(d.data, "case_id", None)]  # type: ignore[attr-defined]
        )
        for delivery in deliveries:
            data = delivery.data
            assert isinstance(data, requests.RequestSubmitted | requests.RequestStatusChanged)
            with _delivery_span(delivery, links):
                await handler.apply_request(data)
        await handler.flush()

    async def _apply_spaces(
        self, session: AsyncSession, sink: EventSink, deliveries: Sequence[Delivery]
    ) -> None:
        directory = SpaceDirectory(session, self.context.refdata_dir)
        links = batch_links()
        for delivery in deliveries:
            assert isinstance(delivery.data, catalog.SpaceSnapshot)
            with _delivery_span(delivery, links):
                await directory.apply_snapshot(delivery.data)

    # ---- the faust app --------------------------------------------------------------------------

    def build_app(self) -> faust.App:
        settings = self.settings
        brokers = ";".join(f"kafka://{b.strip()}" for b in settings.kafka_bootstrap.split(","))
        app = faust.App(
            f"{settings.topic_prefix}{settings.stream_app_id}",
            broker=brokers,
            store="memory://",
            datadir=str(settings.stream_datadir()),  # never `<app id>-data` in the cwd
            autodiscover=False,
            web_enabled=False,
            processing_guarantee="at_least_once",
            topic_partitions=1,
            topic_replication_factor=1,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=settings.stream_session_timeout,
            broker_heartbeat_interval=max(1.0, settings.stream_session_timeout / 5),
            broker_rebalance_timeout=settings.stream_session_timeout * 2,
            broker_commit_interval=settings.stream_commit_interval,
            broker_max_poll_records=settings.stream_batch_size,
            # A topic the group's metadata missed at a join stays unassigned until the next
            # refresh: 30 s instead of aiokafka's 5 minutes.
            consumer_metadata_max_age_ms=30_000,
            stream_buffer_maxsize=max(4096, settings.stream_batch_size * 4),
            broker_credentials=faust_credentials(settings),  # SASL/TLS as the other clients
        )
        for spec in self.specs():
            self._add_agent(app, spec)
        return app

    def _add_agent(self, app: faust.App, spec: AgentSpec) -> None:
        topic = app.topic(spec.topic, key_serializer="raw", value_serializer="raw")

        async def agent(stream: Any) -> None:
            await self.consume(spec, stream)

        agent.__name__ = agent.__qualname__ = f"mobility_{spec.name.replace('-', '_')}"
        app.agent(topic, name=f"mobility.{spec.name}", concurrency=1)(agent)

    async def consume(self, spec: AgentSpec, stream: Any) -> None:
        """Apply each take of the agent's stream as one batch, then acknowledge its events.

        A take is up to `stream_batch_size` events, or what arrived within
        `stream_batch_within` s. It is applied before the next one is awaited: faust yields a
        take only when events arrive, and a rebalance clears the stream's queue, so events held
        back for a later take could wait forever while faust waits for their acknowledgement
        before it gives the partitions up (one agent stuck, the group's rebalance with it).
        """
        busy = self._busy.setdefault(spec.name, asyncio.Lock())
        size = self.settings.stream_batch_size
        within = self.settings.stream_batch_within
        async for events in stream.noack_take(size, within=within):
            records = [_raw(e) for e in events]
            async with busy:
                await self.process(spec, records)
            for event in events:  # acknowledged only once in the database
                await stream.ack(event)

    async def start(self) -> None:
        self.app = self.build_app()
        await self.app.start()
        log.info("stream_started", app=self.app.conf.id, agents=[s.name for s in self.specs()])

    async def stop(self) -> None:
        """Let the batch in hand finish, then stop faust (unacknowledged events are re-read)."""
        self._stopping = True
        try:
            async with asyncio.timeout(15), contextlib.AsyncExitStack() as held:
                for lock in self._busy.values():
                    await held.enter_async_context(lock)
                if self.app is not None:
                    _dont_wait_for_unapplied_events(self.app)
                    await self.app.stop()
        except TimeoutError:
            if self.app is not None:
                await self.app.stop()
        self.app = None
        await self._dead_letters.stop()

    # ---- applying a batch -----------------------------------------------------------------------

    async def process(self, spec: AgentSpec, records: Sequence[RawRecord]) -> None:
        """Decode, dead-letter what is invalid, apply the rest (batch, else one by one)."""
        started = time.perf_counter()
        deliveries: list[Delivery] = []
        for record in records:
            try:
                delivery = self._decode(spec, record)
            except (InvalidEvent, ValidationError, UnknownEventType) as exc:
                await self._dead_letter(spec, record, failure_reason(exc), attempts=0)
                continue
            if delivery is not None:
                deliveries.append(delivery)
            else:
                STREAM_EVENTS.labels(spec.name, "ignored").inc()
        if deliveries:
            try:
                await self._apply(spec, deliveries)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "stream_batch_failed",
                    agent=spec.name,
                    size=len(deliveries),
                    error=repr(exc),
                    exc_info=True,
                )
                for delivery in deliveries:
                    await self._apply_alone(spec, delivery)
        BATCH_SECONDS.labels(spec.name).observe(time.perf_counter() - started)

    def _decode(self, spec: AgentSpec, record: RawRecord) -> Delivery | None:
        event = from_kafka(record.headers, record.value)
        registry = self.context.registry
        declared = registry.topic_for_event(event.type).name
        if declared != record.topic:
            raise UnknownEventType(f"{event.type} is not an event of {record.topic}")
        if event.type not in spec.types:
            return None
        data = registry.validate(event.type, event.data)
        return Delivery(event, data, record)

    async def _apply(self, spec: AgentSpec, deliveries: Sequence[Delivery]) -> None:
        """Apply a batch in one transaction, under one span the deliveries' own spans link to."""
        with tracer.start_as_current_span(
            f"{spec.topic} process batch",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.consumer.group.name": "mobility",
                "messaging.batch.message_count": len(deliveries),
            },
        ):
            await self._apply_batch(spec, deliveries)

    async def _apply_batch(self, spec: AgentSpec, deliveries: Sequence[Delivery]) -> None:
        sink = self.context.sink()
        processed = self.tables.processed
        consumer = f"mobility.{spec.name}"
        async with self.db.transaction() as session:
            await plan_for_each_batch(session)
            todo = list(deliveries)
            guarded = spec.self_guarded or (lambda _: False)
            recorded = [d for d in todo if not guarded(d)] if spec.dedupe else []
            if recorded:
                seen = set(
                    (
                        await session.scalars(
                            select(processed.c.event_id).where(
                                processed.c.consumer == consumer,
                                processed.c.event_id.in_({d.event.id for d in recorded}),
                            )
                        )
                    ).all()
                )
                fresh: list[Delivery] = []
                for d in todo:
                    if guarded(d):
                        fresh.append(d)
                    elif d.event.id not in seen:
                        seen.add(d.event.id)
                        fresh.append(d)
                STREAM_EVENTS.labels(spec.name, "duplicate").inc(len(todo) - len(fresh))
                todo = fresh
                recorded = [d for d in todo if not guarded(d)]
            if todo:
                await spec.apply(session, sink, todo)
                if recorded:
                    now = datetime.now(UTC)
                    await bulk_insert(
                        session,
                        processed,
                        [
                            {
                                "consumer": consumer,
                                "event_id": d.event.id,
                                "event_type": d.event.type,
                                "topic": d.raw.topic,
                                "partition": d.raw.partition,
                                "offset": d.raw.offset,
                                "processed_at": now,
                            }
                            for d in recorded
                        ],
                    )
            await sink.flush(session, self.outbox)  # the commit wakes the relays
        STREAM_EVENTS.labels(spec.name, "applied").inc(len(todo))

    async def _apply_alone(self, spec: AgentSpec, delivery: Delivery) -> None:
        """Apply one event with bounded retries; dead-letter it only when the event is at fault.

        A lost database connection (restart, failover) is not the event's fault: it is retried
        for as long as the database is away, never parked, unless the worker is stopping (then
        the batch is left unacknowledged and re-read by the next worker).
        """
        delay = 0.2
        attempts = self.settings.stream_max_attempts
        attempt = 0
        while True:
            try:
                await self._apply(spec, [delivery])
                return
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                reason = failure_reason(exc)
                await self._dead_letter(spec, delivery.raw, reason, attempts=attempt + 1)
                return
            except Exception as exc:
                if is_connection_error(exc):
                    if self._stopping:
                        raise
                    log.warning("stream_database_unavailable", agent=spec.name, error=repr(exc))
                else:
                    attempt += 1
                    if attempt >= attempts:
                        reason = f"failed after {attempt} attempts: {failure_reason(exc)}"
                        await self._dead_letter(spec, delivery.raw, reason, attempts=attempt)
                        return
                    log.warning("stream_retry", agent=spec.name, attempt=attempt, error=repr(exc))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
                delay = min(delay * 2, 5.0)

    async def _dead_letter(
        self, spec: AgentSpec, record: RawRecord, reason: str, *, attempts: int
    ) -> None:
        """Park the message on `<topic>.dlq` with the reason; retry until Kafka takes it."""
        consumer = f"mobility.{spec.name}"
        await self._dead_letters.park(record, reason, consumer=consumer, attempts=attempts)
        STREAM_EVENTS.labels(spec.name, "dead_lettered").inc()


def _delivery_span(
    delivery: Delivery, links: Sequence[trace.Link]
) -> contextlib.AbstractContextManager[trace.Span]:
    """The span of one delivery, child of the trace its record carries and linked to its
    batch's span: the outbox events emitted while applying it carry that trace on (the sink
    keeps each event's context)."""
    return consume_span(
        tracer,
        f"{delivery.raw.topic} process",
        delivery.raw.headers,
        {
            "messaging.consumer.group.name": "mobility",
            "cloudevents.event_type": delivery.event.type,
        },
        links=links,
    )


def _confirms_own_request(delivery: Delivery) -> bool:
    """A request submitted under the id its case gave it: the case knows it already."""
    data = delivery.data
    return (
        isinstance(data, requests.RequestSubmitted)
        and data.case_id is not None
        and data.request_id == request_id_for(data.case_id, data.atlas_id)
    )


def _dont_wait_for_unapplied_events(app: faust.App) -> None:
    """Stop faust without waiting for the acknowledgement of events taken and not applied.

    By default faust's consumer waits, at a stop, until every event it delivered is
    acknowledged. The batches in hand are finished already (the agents' locks are held): what
    remains are events this worker will not apply, which would keep the stop waiting for
    ever. They are not acknowledged, so the next worker reads them again. Rebalances keep
    faust's default (wait for the events in flight).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlreadyConfiguredWarning)  # set late, on purpose
        app.conf.stream_wait_empty = False


def _raw(event: Any) -> RawRecord:
    message = event.message
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = list(headers.items())
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=[(k, v) for k, v in headers],
    )
