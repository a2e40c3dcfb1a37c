"""Prometheus gauges of the request queues, recomputed from the database by a periodic task."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import Gauge
from sqlalchemy import and_, case, func, or_, select

from atlas_events.db import Database
from atlas_events.workers import PeriodicTask
from atlas_requests.requests.models import Request
from atlas_requests.requests.state import OPEN_STATUSES

SLA_BREACHED_OPEN = Gauge(
    "atlas_requests_sla_breached_open",
    "Open requests past their SLA deadline (flagged by the SLA monitor or due already), per space",
    ["atlas_id"],
)
OPEN_REQUESTS = Gauge(
    "atlas_requests_open",
    "Open requests (the backlog) per space and status",
    ["atlas_id", "status"],
)

R = Request.__table__.c  # type: ignore[attr-defined]


async def refresh(db: Database, now: datetime | None = None) -> dict[str, int]:
    """Recompute the gauges from the database; return the breached counts per space."""
    now = now or datetime.now(UTC)
    # Past the SLA: the monitor flagged it, or its deadline went by since the monitor's last pass.
    # A request waiting for the user keeps its breach flag: it stays late in the space's figures.
    late = or_(R.sla_breached_at.is_not(None), and_(R.sla_due_at.is_not(None), R.sla_due_at <= now))
    query = (
        select(R.atlas_id, R.status, func.count(), func.sum(case((late, 1), else_=0)))
        .where(R.status.in_([s.value for s in OPEN_STATUSES]))
        .group_by(R.atlas_id, R.status)
    )
    async with db.transaction() as session:
        rows = (await session.execute(query)).all()
    backlog: dict[tuple[str, ...], int] = {
        (atlas_id, status): int(count) for atlas_id, status, count, _ in rows
    }
    breached: dict[str, int] = {}
    for atlas_id, _, _, late_count in rows:
        breached[atlas_id] = breached.get(atlas_id, 0) + int(late_count or 0)
    _publish(OPEN_REQUESTS, backlog)
    _publish(SLA_BREACHED_OPEN, {(atlas_id,): n for atlas_id, n in breached.items()})
    return breached


def _publish(gauge: Gauge, values: dict[tuple[str, ...], int]) -> None:
    """Set every value, then drop the label sets that vanished (a space with no open request)."""
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    for metric in gauge.collect():
        for sample in metric.samples:
            labels = tuple(sample.labels.values())
            if labels not in values:
                gauge.remove(*labels)


class QueueMetrics(PeriodicTask):
    """Keeps the queue gauges current in the process that runs the workers (scraped there)."""

    def __init__(
        self, db: Database, interval: float, *, now: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__("requests.queue-metrics", interval, self.refresh_once)
        self.db = db
        self._now = now

    async def refresh_once(self) -> dict[str, int]:
        return await refresh(self.db, self._now() if self._now else None)
