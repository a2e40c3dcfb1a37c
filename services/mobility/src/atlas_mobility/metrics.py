"""Dashboard metrics read from the database: anticipation lead time per space, cases by status."""

from __future__ import annotations

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlmodel import col

from atlas_events.db import Database
from atlas_mobility.cases.models import HandlerCase
from atlas_mobility.dossiers.models import Dossier

CASES_BY_STATUS = Gauge(
    "atlas_mobility_cases", "Handler cases by kind and status", ["kind", "status"]
)
ANTICIPATION_MEAN = Gauge(
    "atlas_mobility_anticipation_mean_days",
    "Mean lead time (report date minus announcement) of live dossiers, per space and 'all'",
    ["atlas_id"],
)
ANTICIPATION_TARGET = Gauge(
    "atlas_mobility_anticipation_target_met_ratio",
    "Share of live dossiers announced at least 150 days (five months) before the report date",
    ["atlas_id"],
)
TARGET_DAYS = 150


async def refresh(db: Database) -> None:
    """Recompute the gauges from the database (every worker sees the same figures)."""
    async with db.transaction() as session:
        cases = (
            await session.execute(
                select(col(HandlerCase.kind), col(HandlerCase.status), func.count()).group_by(
                    col(HandlerCase.kind), col(HandlerCase.status)
                )
            )
        ).all()
        leads = (
            await session.execute(
                select(
                    col(Dossier.destination_atlas_id),
                    col(Dossier.report_date),
                    col(Dossier.announced_at),
                ).where(
                    col(Dossier.cancelled_at).is_(None),
                    col(Dossier.report_date).is_not(None),
                )
            )
        ).all()
    CASES_BY_STATUS.clear()
    for kind, status, count in cases:
        CASES_BY_STATUS.labels(kind, status).set(count)
    per_space: dict[str, list[int]] = {}
    for atlas_id, report_date, announced_at in leads:
        if report_date is None:
            continue
        days = (report_date - announced_at.date()).days
        per_space.setdefault(atlas_id or "a_orienter", []).append(days)
        per_space.setdefault("all", []).append(days)
    ANTICIPATION_MEAN.clear()
    ANTICIPATION_TARGET.clear()
    for atlas_id, values in per_space.items():
        ANTICIPATION_MEAN.labels(atlas_id).set(sum(values) / len(values))
        ANTICIPATION_TARGET.labels(atlas_id).set(
            sum(v >= TARGET_DAYS for v in values) / len(values)
        )
