"""Delivery outcomes for Prometheus, counted only once the transaction that records them commits."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

DELIVERIES = Counter(
    "atlas_notify_deliveries_total",
    "Deliveries that reached a final status (delivered, skipped or a failure), by channel",
    ["channel", "status"],
)

_PENDING = "atlas_notify.final_deliveries"


def count_final(session: AsyncSession, channel: str, status: str, n: int = 1) -> None:
    """Count `n` deliveries of `channel` reaching `status` when `session` commits (not before)."""
    pending: Tally[tuple[str, str]] = session.info.setdefault(_PENDING, Tally())
    pending[(channel, status)] += n


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending: Tally[tuple[str, str]] | None = session.info.pop(_PENDING, None)
    for (channel, status), n in (pending or {}).items():
        DELIVERIES.labels(channel, status).inc(n)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    # A rolled-back transition never happened: a retry or another dispatcher will record it.
    session.info.pop(_PENDING, None)
