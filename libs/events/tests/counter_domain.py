"""A tiny domain for the outbox and consumer tests: counters incremented by events.

Also runnable as a script: a consumer that dies (os._exit) right after its database commit and
before its offset commit, to prove the message is re-read and not applied twice.
"""

from __future__ import annotations

import asyncio
import os
import sys

from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.consumer import ConsumerRunner, Delivery
from atlas_events.db import Database
from atlas_events.errors import PermanentError
from atlas_events.outbox import EventTables, notify_trigger_sql
from atlas_events.registry import EventType, Topic, TopicRegistry

INCREMENTED = "fr.defense.atlas.test.counter.incremented.v1"
EXPLODED = "fr.defense.atlas.test.counter.exploded.v1"


class Incremented(BaseModel):
    counter: str
    amount: int


class Exploded(BaseModel):
    counter: str


def make_registry(topic: str) -> TopicRegistry:
    return TopicRegistry(
        [
            Topic(
                name=topic,
                key="counter",
                partitions=3,
                cleanup_policy="delete",
                events=(
                    EventType(INCREMENTED, Incremented, "A counter went up."),
                    EventType(EXPLODED, Exploded, "A handler that always fails."),
                ),
                description="Test topic.",
                owner="test",
                public=False,
            )
        ]
    )


metadata = MetaData()
counters = Table(
    "counters",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Integer, nullable=False),
)
tables = EventTables(metadata)


async def create_schema(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        if not db.is_sqlite:
            for statement in notify_trigger_sql():
                await conn.exec_driver_sql(statement)


async def counter_value(db: Database, name: str) -> int | None:
    async with db.transaction() as session:
        value: int | None = await session.scalar(
            select(counters.c.value).where(counters.c.name == name)
        )
        return value


async def handle_incremented(session: AsyncSession, delivery: Delivery) -> None:
    data = delivery.data
    assert isinstance(data, Incremented)
    result = await session.execute(
        update(counters)
        .where(counters.c.name == data.counter)
        .values(value=counters.c.value + data.amount)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(counters.insert().values(name=data.counter, value=data.amount))


async def handle_exploded(session: AsyncSession, delivery: Delivery) -> None:
    raise RuntimeError("the counter exploded")


async def handle_exploded_permanently(session: AsyncSession, delivery: Delivery) -> None:
    raise PermanentError("this counter can never be applied")


def make_runner(
    db: Database, bootstrap: str, topic: str, *, group: str, **kwargs: object
) -> ConsumerRunner:
    return ConsumerRunner(
        name=group,
        topics=[topic],
        handlers={INCREMENTED: handle_incremented, EXPLODED: handle_exploded},
        db=db,
        tables=tables,
        bootstrap=bootstrap,
        registry=make_registry(topic),
        backoff_initial=0.01,
        **kwargs,  # type: ignore[arg-type]
    )


async def _crash_after_first_commit(db_url: str, bootstrap: str, topic: str, group: str) -> None:
    db = Database(db_url)

    async def die(_: Delivery) -> None:
        sys.stdout.write("committed-then-crashing\n")
        sys.stdout.flush()
        os._exit(17)  # no offset commit, no graceful leave: a real crash

    runner = make_runner(db, bootstrap, topic, group=group, after_db_commit=die)
    await runner.run()


if __name__ == "__main__":
    asyncio.run(_crash_after_first_commit(*sys.argv[1:5]))
