"""The event tables' retention: what is old and done goes, in chunks; nothing else is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import counter_domain
import pytest
from sqlalchemy import insert, select

from atlas_events import retention
from atlas_events.db import Database, try_advisory_xact_lock
from atlas_events.registry import REGISTRY
from atlas_events.retention import RetentionPolicy, prune_event_tables
from atlas_events.settings import ServiceSettings

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(outbox_keep=timedelta(days=7), processed_keep=timedelta(days=45))


def _outbox_row(n: int, created: datetime, published: datetime | None) -> dict[str, object]:
    return {
        "event_id": f"evt-{n}",
        "event_type": counter_domain.INCREMENTED,
        "topic": "t",
        "key": b"k",
        "value": b"{}",
        "headers": [],
        "created_at": created,
        "published_at": published,
    }


def _processed_row(n: int, at: datetime) -> dict[str, object]:
    return {
        "consumer": "c" if n % 2 else "d",
        "event_id": f"evt-{n}",
        "event_type": counter_domain.INCREMENTED,
        "topic": "t",
        "partition": 0,
        "offset": n,
        "processed_at": at,
    }


async def _left(db: Database) -> tuple[list[str], list[str]]:
    tables = counter_domain.tables
    async with db.transaction() as session:
        outbox = list(
            (await session.scalars(select(tables.outbox.c.event_id).order_by("id"))).all()
        )
        processed = list(
            (
                await session.scalars(
                    select(tables.processed.c.event_id).order_by(tables.processed.c.offset)
                )
            ).all()
        )
    return outbox, processed


async def test_old_published_rows_and_old_records_go_in_chunks_the_rest_stays(
    counter_db: Database,
) -> None:
    tables = counter_domain.tables
    old, recent = NOW - timedelta(days=8), NOW - timedelta(days=6)
    outbox_rows = (
        [_outbox_row(n, old, old) for n in range(7)]  # published long ago: go
        + [_outbox_row(7, old - timedelta(days=30), None)]  # never published: stays, however old
        + [_outbox_row(8, old, recent)]  # published within the week: stays
        + [_outbox_row(9, recent, None)]
    )
    processed_rows = [_processed_row(n, NOW - timedelta(days=46)) for n in range(5)] + [
        _processed_row(5, NOW - timedelta(days=44))
    ]
    async with counter_db.transaction() as session:
        await session.execute(insert(tables.outbox), outbox_rows)
        await session.execute(insert(tables.processed), processed_rows)

    pruned = await prune_event_tables(counter_db, tables, POLICY, now=NOW, chunk=3)

    assert pruned is not None
    assert (pruned.outbox, pruned.processed) == (7, 5)
    assert await _left(counter_db) == (["evt-7", "evt-8", "evt-9"], ["evt-5"])
    again = await prune_event_tables(counter_db, tables, POLICY, now=NOW, chunk=3)
    assert again is not None
    assert (again.outbox, again.processed) == (0, 0)


async def test_one_process_prunes_at_a_time(pg_counter_db: Database) -> None:
    tables = counter_domain.tables
    long_ago = NOW - timedelta(days=30)
    async with pg_counter_db.transaction() as session:
        await session.execute(insert(tables.outbox), [_outbox_row(1, long_ago, long_ago)])
    other = Database(str(pg_counter_db.engine.url.render_as_string(hide_password=False)))
    try:
        async with other.transaction() as session:
            assert await try_advisory_xact_lock(session, retention._LOCK_NAME)
            assert await prune_event_tables(pg_counter_db, tables, POLICY, now=NOW) is None
            assert (await _left(pg_counter_db))[0] == ["evt-1"]
    finally:
        await other.dispose()
    pruned = await prune_event_tables(pg_counter_db, tables, POLICY, now=NOW)
    assert pruned is not None
    assert pruned.outbox == 1


def test_records_must_outlive_every_topic_retention() -> None:
    ServiceSettings().retention_policy().check(REGISTRY)  # the defaults start
    short = ServiceSettings(processed_keep_days=10).retention_policy()
    with pytest.raises(ValueError, match="applied twice"):
        short.check(REGISTRY)
