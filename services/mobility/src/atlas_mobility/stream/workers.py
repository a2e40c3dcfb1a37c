"""The mobility workers the service kit supervises: the faust app and the reminder scheduler."""

from __future__ import annotations

import asyncio

import structlog

from atlas_events.kafka import ensure_topics
from atlas_events.service import Runtime
from atlas_events.workers import PeriodicTask
from atlas_mobility import metrics
from atlas_mobility.cases.reminders import emit_reminders
from atlas_mobility.config import MobilitySettings
from atlas_mobility.context import MobilityContext
from atlas_mobility.missions.service import MissionDesk
from atlas_mobility.stream.processor import StreamProcessor

log = structlog.get_logger(__name__)

REMINDER_BATCH = 500


class StreamWorker:
    """Runs the faust app until stopped (a `Worker` of the service kit)."""

    name = "mobility.stream"

    def __init__(
        self, runtime: Runtime, settings: MobilitySettings, context: MobilityContext
    ) -> None:
        self.processor = StreamProcessor(
            settings=settings,
            context=context,
            db=runtime.db,
            outbox=runtime.outbox,
        )
        self._bootstrap = settings.kafka_bootstrap
        self._kafka_options = runtime.kafka_options
        self._registry = context.registry
        self._stop = asyncio.Event()
        self.started = asyncio.Event()

    async def run(self) -> None:
        # Auto topic creation is off on the platform's brokers: create ours before faust reads.
        await ensure_topics(self._bootstrap, self._registry, kafka_options=self._kafka_options)
        await self.processor.start()
        self.started.set()
        try:
            await self._stop.wait()
        finally:
            await self.processor.stop()

    async def stop(self) -> None:
        self._stop.set()


def reminder_scheduler(
    runtime: Runtime, settings: MobilitySettings, context: MobilityContext
) -> PeriodicTask:
    """Emits milestone reminders (due, overdue) and refreshes the dashboard gauges."""

    async def tick() -> int:
        total = 0
        while True:
            sink = context.sink()
            async with runtime.db.transaction() as session:
                sent = await emit_reminders(session, context, sink, limit=REMINDER_BATCH)
                await sink.flush(session, runtime.outbox)  # the commit wakes the relay
            total += sent
            if sent < REMINDER_BATCH:
                break
        await metrics.refresh(runtime.db)
        return total

    return PeriodicTask("mobility.reminders", settings.reminder_interval_seconds, tick)


def mission_return_check(
    runtime: Runtime, settings: MobilitySettings, context: MobilityContext
) -> PeriodicTask:
    """Flags, once, each mission whose planned return date passed with no returned event."""

    async def tick() -> int:
        total = 0
        while True:
            sink = context.sink()
            async with runtime.db.transaction() as session:
                flagged = await MissionDesk(session, context, sink).flag_missing_returns(
                    limit=REMINDER_BATCH
                )
                await sink.flush(session, runtime.outbox)  # the commit wakes the relay
            total += flagged
            if flagged < REMINDER_BATCH:
                return total

    return PeriodicTask("mobility.mission-returns", settings.reminder_interval_seconds, tick)
