"""Retention of the event tables: published outbox rows and old processed-event records go.

Both tables grow with every event. The outbox is a transport, not an archive: once Kafka has
acknowledged a row (`published_at` set) it is only kept a while for operators to look at
(Kafka keeps the event itself). A processed-event record makes a redelivery harmless, and a
message can only be redelivered while a topic still holds it: records are kept longer than the
longest retention of the topics (`RetentionPolicy.check` refuses a shorter keep). Rows are
deleted in small chunks, each its own short transaction, so the relay and the consumers are
never held up; on PostgreSQL an advisory lock lets one process of a service prune at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter
from sqlalchemy import delete, select, tuple_

from atlas_events.db import Database, rowcount, try_advisory_xact_lock
from atlas_events.outbox import EventTables
from atlas_events.registry import DLQ_RETENTION_MS, TopicRegistry

log = structlog.get_logger(__name__)

PRUNED = Counter(
    "atlas_event_tables_pruned_total", "Rows deleted by the event tables' retention", ["table"]
)

CHUNK = 5000  # rows per delete: a short transaction, a bounded lock set


@dataclass(frozen=True)
class RetentionPolicy:
    """How long published outbox rows and processed-event records are kept."""

    outbox_keep: timedelta
    processed_keep: timedelta

    def check(self, registry: TopicRegistry) -> None:
        """Refuse a processed-event keep shorter than a topic's (or a DLQ's) retention: a
        message still in Kafka could then be redelivered, or replayed, and applied twice."""
        longest = max(
            [DLQ_RETENTION_MS] + [t.retention_ms for t in registry.topics() if t.retention_ms]
        )
        if self.processed_keep < timedelta(milliseconds=longest):
            raise ValueError(
                f"processed-event records are kept {self.processed_keep}, less than the"
                f" {timedelta(milliseconds=longest)} a topic keeps its messages: a redelivered"
                " message could be applied twice"
            )


@dataclass(frozen=True)
class Pruned:
    outbox: int
    processed: int


async def prune_event_tables(
    db: Database,
    tables: EventTables,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    chunk: int = CHUNK,
) -> Pruned | None:
    """Delete what the policy no longer keeps; None if another process is pruning already."""
    now = now or datetime.now(UTC)
    outbox, processed = tables.outbox, tables.processed
    published_long_ago = (
        select(outbox.c.id)
        .where(outbox.c.published_at < now - policy.outbox_keep)
        .order_by(outbox.c.id)
        .limit(chunk)
    )
    processed_long_ago = (
        select(processed.c.consumer, processed.c.event_id)
        .where(processed.c.processed_at < now - policy.processed_keep)
        .limit(chunk)
    )
    statements = {
        "outbox": delete(outbox).where(outbox.c.id.in_(published_long_ago)),
        "processed": delete(processed).where(
            tuple_(processed.c.consumer, processed.c.event_id).in_(processed_long_ago)
        ),
    }
    counts = dict.fromkeys(statements, 0)
    for name, statement in statements.items():
        deleted = chunk
        while deleted == chunk:
            async with db.transaction() as session:
                if not db.is_sqlite and not await try_advisory_xact_lock(session, _LOCK_NAME):
                    return None
                deleted = rowcount(await session.execute(statement))
            counts[name] += deleted
            PRUNED.labels(name).inc(deleted)
    if counts["outbox"] or counts["processed"]:
        log.info("event_tables_pruned", **counts)
    return Pruned(**counts)


# The advisory lock of the pruning, the same number in every process of every service (each
# service has its own database).
_LOCK_NAME = "atlas_events.retention"
