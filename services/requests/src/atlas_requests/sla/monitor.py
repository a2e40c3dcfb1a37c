"""The periodic SLA check: emits warnings and breaches as their instants come."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from atlas_events.consumer import ConsumerRunner
from atlas_events.db import Database
from atlas_events.outbox import EventTables, Outbox
from atlas_requests.config import RequestsSettings
from atlas_requests.requests.service import RequestService

log = structlog.get_logger(__name__)


class SlaMonitor(ConsumerRunner):
    """A periodic worker shaped like a consumer, so the runtime starts and stops it with them.

    It reads no topic: it only reuses the runner's lifecycle (`run`, `stop`, `started`).
    """

    def __init__(
        self,
        *,
        db: Database,
        tables: EventTables,
        outbox: Outbox,
        settings: RequestsSettings,
        bootstrap: str,
    ) -> None:
        super().__init__(
            name="requests.sla-monitor", topics=[], handlers={}, db=db, tables=tables,
            bootstrap=bootstrap,
        )  # fmt: skip
        self.outbox = outbox
        self.settings = settings

    async def check_once(self) -> int:
        """One pass over the due requests, in batches, each batch its own transaction."""
        total = 0
        while True:
            async with self.db.transaction() as session:
                emitted = await RequestService(session, self.outbox, self.settings).report_sla()
            total += emitted
            if emitted == 0:
                return total

    async def run(self) -> None:
        self.started.set()
        while not self._stopping.is_set():
            try:
                emitted = await self.check_once()
                if emitted:
                    log.info("sla_events_emitted", count=emitted)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be away for a moment; try next time
                log.warning("sla_check_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.sla_check_seconds)
