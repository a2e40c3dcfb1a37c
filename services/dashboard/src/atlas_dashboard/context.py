"""What one running dashboard holds: its projection, the Kafka probe and their workers."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import structlog
from fastapi import Depends

from atlas_dashboard import metrics
from atlas_dashboard.config import DashboardSettings
from atlas_dashboard.overview import Overview
from atlas_dashboard.projection import Projection
from atlas_dashboard.reader import KafkaProbe, ProjectionReader
from atlas_events.service import Runtime, RuntimeDep

log = structlog.get_logger(__name__)


class DashboardContext:
    """The projection, the reader filling it and the probe reading lag and DLQ sizes."""

    def __init__(self, runtime: Runtime) -> None:
        self.settings = cast(DashboardSettings, runtime.settings)
        settings = self.settings
        self.projection = Projection(window=timedelta(minutes=settings.window_minutes))
        kafka: dict[str, Any] = {
            "bootstrap": settings.kafka_bootstrap,
            "prefix": settings.topic_prefix,
            "kafka_options": runtime.kafka_options,  # TLS and SASL in the cluster
        }
        self.reader = ProjectionReader(self.projection, **kafka)
        self.probe = KafkaProbe(**kafka)

    def overview(self, atlas_id: str | None = None, now: datetime | None = None) -> Overview:
        """Every figure, for one space or for all of them."""
        now = now or datetime.now(UTC)
        projection = self.projection
        months = self.settings.horizon_months
        return Overview(
            generated_at=now,
            caught_up=self.reader.caught_up.is_set(),
            events_applied=projection.applied,
            events_skipped=projection.skipped,
            horizon=projection.horizon(now.date(), months),
            scope=atlas_id,
            arrivals=projection.arrivals(now.date(), months, atlas_id),
            missions=projection.mission_flows(now.date(), atlas_id),
            requests=projection.request_queues(now, atlas_id),
            notifications=projection.notification_health(now),
            crisis=projection.crisis(atlas_id),
            kafka=self.probe.health,
            dlq_by_consumer=projection.dead_letters(),
        )


class KafkaPoller:
    """Reads lag and DLQ sizes, and refreshes the projection's gauges, every few seconds."""

    name = "dashboard.kafka"

    def __init__(self, context: DashboardContext) -> None:
        self.context = context
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        interval = self.context.settings.kafka_poll_seconds
        try:
            while not self._stopping.is_set():
                try:
                    await self.context.probe.refresh()
                except Exception as exc:  # the broker may be away: show the error, retry
                    log.warning("kafka_probe_failed", error=repr(exc))
                metrics.publish_overview(self.context.overview())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=interval)
        finally:
            await self.context.probe.close()

    async def stop(self) -> None:
        self._stopping.set()


def context_of(runtime: Runtime) -> DashboardContext:
    return runtime.extension(DashboardContext)


def _context(runtime: RuntimeDep) -> DashboardContext:
    return context_of(runtime)


ContextDep = Annotated[DashboardContext, Depends(_context)]
