"""The periodic SLA check: emits warnings and breaches as their instants come."""

from __future__ import annotations

import structlog

from atlas_events.db import Database
from atlas_events.outbox import Outbox
from atlas_events.workers import PeriodicTask
from atlas_requests.config import RequestsSettings
from atlas_requests.requests.service import RequestService

log = structlog.get_logger(__name__)


class SlaMonitor(PeriodicTask):
    """The periodic SLA pass, run by the kit beside the consumers."""

    def __init__(self, *, db: Database, outbox: Outbox, settings: RequestsSettings) -> None:
        super().__init__("requests.sla-monitor", settings.sla_check_seconds, self.check_once)
        self.db = db
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
                if total:
                    log.info("sla_events_emitted", count=total)
                return total
