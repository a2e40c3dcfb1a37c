"""The floor of a mobility burst: what its required work costs at raw speed, in the same run.

The burst's raw baseline (aiokafka consume-and-produce) moves one message per mutation. The
contracts make a mutation move many more (the handler facts and dossier events published for
integrators, the commands to the requests service, its request events read back), and persist
rows in two databases. This module measures, after a burst, on the run's own topics and
databases, what that required work costs when each part is done at raw speed:

- Kafka: the messages on the run's topics, at the raw baseline's CPU per message moved, half a
  move for each production and half for each consumption by a service;
- PostgreSQL: the rows the services wrote, loaded again with binary COPY into empty copies of
  their tables (same indexes and constraints but the foreign keys), one COPY per table, one
  transaction: the bulk-load floor of the same rows, updates left out;
- Python: decoding and validating every message a service consumes (`from_kafka` and the
  registry's model), and encoding every message a service produces from its validated model
  (`NewMessages`), measured on a sample of each topic and scaled to its count.

Nothing here is the platform's own work; it is what any implementation of the same contracts on
the same stack pays at least. The sum, against the target, says whether a target is within reach
of tuning or needs fewer messages or rows per mutation.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import CpuSnapshot, cpu_used

SAMPLE_PER_TOPIC = 10_000
# The run's topics a service consumes in the burst (mobility: HR and request events; requests:
# commands); every other run topic is produced for integrators and read by none of them here.
CONSUMED = ("hr.mutations.v1", "requests.commands.v1", "requests.requests.v1")
PRODUCED_BY_LOAD = "hr.mutations.v1"  # written by the bench, as the HR system
# Reference data loaded before the burst (the requests service's catalog replica, mobility's
# spaces and the communes they cover): not the burst's rows.
SEEDED_TABLES = frozenset(
    {
        "alembic_version",
        "replica_prestations",
        "replica_spaces",
        "mobility_spaces",
        "mobility_space_communes",
        "mobility_departement_defaults",
    }
)


@dataclass(frozen=True)
class Floor:
    mutations: int  # HR messages on the run's topic (burst and steady phase)
    messages: Mapping[str, int]  # per run topic (prefix removed)
    rows: Mapping[str, int]  # per table ("database.table"), rows bulk-loaded again
    copy_cpu: float  # CPU s (whole machine) of the bulk load of those rows
    decode_cpu: float  # CPU s to decode and validate what the services consume
    encode_cpu: float  # CPU s to encode what the services produce

    def moves(self) -> float:
        """Messages moved, in raw-baseline units (one unit: one consumed and produced)."""
        produced = sum(self.messages.values())
        consumed = sum(n for topic, n in self.messages.items() if topic in CONSUMED)
        return (produced + consumed) / 2

    def per_1000(self, cpu: float) -> float:
        return cpu * 1000 / max(self.mutations, 1)


async def topic_counts(bootstrap: str, registry: Any, prefix: str) -> dict[str, int]:
    """Messages on each of the run's topics (the prefixed registry's; DLQs left out)."""
    names = [topic.name for topic in registry.topics()]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        counts: dict[str, int] = {}
        for topic in described:
            if topic["error_code"] != 0 or not topic["partitions"]:
                continue  # not created in this run
            name = topic["topic"]
            partitions = [TopicPartition(name, p["partition"]) for p in topic["partitions"]]
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            total = sum(ends[tp] - starts[tp] for tp in partitions)
            if total:
                counts[name.removeprefix(prefix)] = total
        return counts
    finally:
        await consumer.stop()


async def sample(bootstrap: str, topic: str, limit: int) -> list[Any]:
    """Up to `limit` records of a topic, from its beginning."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[Any] = []
    try:
        idle = 0
        while len(records) < limit and idle < 3:
            batches = await consumer.getmany(timeout_ms=500, max_records=2_000)
            got = [r for rs in batches.values() for r in rs]
            idle = 0 if got else idle + 1
            records.extend(got)
        return records[:limit]
    finally:
        await consumer.stop()


def codec_cpu(records: Sequence[Any], *, decode: bool, encode: bool) -> tuple[float, float]:
    """CPU s to decode and validate the records, and to encode their validated data again."""
    from atlas_events.cloudevents import NewMessages, from_kafka
    from atlas_events.registry import REGISTRY

    started = time.process_time()
    decoded = []
    for record in records:
        event = from_kafka(list(record.headers), record.value)
        decoded.append((event, REGISTRY.validate(event.type, event.data), record.key))
    decode_s = time.process_time() - started
    writer = NewMessages("bench.floor")
    started = time.process_time()
    for event, data, key in decoded:
        writer.message(event.type, data, key, subject=event.subject)
    encode_s = time.process_time() - started
    return (decode_s if decode else 0.0), (encode_s if encode else 0.0)


async def written_tables(url: str) -> dict[str, int]:
    """The tables of a database holding rows the burst wrote, with their row counts."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY relname"
        )
        counts: dict[str, int] = {}
        for row in rows:
            name = row["relname"]
            if name in SEEDED_TABLES or name.startswith("floor_"):
                continue
            count = await connection.fetchval(f'SELECT count(*) FROM "{name}"')  # noqa: S608
            if count:
                counts[name] = int(count)
        return counts
    finally:
        await connection.close()


async def bulk_load_cpu(urls: Mapping[str, str], classify: Any) -> tuple[dict[str, int], float]:
    """Rows per table, and the machine's CPU s to COPY them again into copies of their tables."""
    import asyncpg

    rows: dict[str, int] = {}
    exported: list[tuple[str, str, bytes]] = []  # (database, table, binary COPY data)
    for database, url in urls.items():
        counts = await written_tables(url)
        connection = await asyncpg.connect(url)
        try:
            for table, count in counts.items():
                buffer = io.BytesIO()
                await connection.copy_from_table(table, output=buffer, format="binary")
                await connection.execute(
                    f'CREATE TABLE "floor_{table}" (LIKE "{table}" INCLUDING ALL)'
                )
                exported.append((database, table, buffer.getvalue()))
                rows[f"{database}.{table}"] = count
        finally:
            await connection.close()
    connections = {database: await asyncpg.connect(url) for database, url in urls.items()}
    try:
        await _checkpoint(connections.values())
        before = CpuSnapshot.take()
        for database, table, data in exported:
            connection = connections[database]
            async with connection.transaction():
                await connection.copy_to_table(
                    f"floor_{table}", source=io.BytesIO(data), format="binary"
                )
        await _checkpoint(connections.values())  # the load's pages written, as a burst's are
        used = cpu_used(before, CpuSnapshot.take(), classify)["machine"]
        for database, table, _ in exported:
            await connections[database].execute(f'DROP TABLE "floor_{table}"')
    finally:
        for connection in connections.values():
            await connection.close()
    return rows, used


async def _checkpoint(connections: Any) -> None:
    """One checkpoint: the databases share one server, whose checkpoint writes all their pages."""
    await next(iter(connections)).execute("CHECKPOINT")


async def measure(
    bootstrap: str,
    registry: Any,
    prefix: str,
    database_urls: Mapping[str, str],
    classify: Any,
) -> Floor:
    """The floor of the burst on the topics of `registry` (the run's, behind `prefix`) whose
    rows are in the databases (name → asyncpg URL)."""
    counts = await topic_counts(bootstrap, registry, prefix)
    decode_cpu = encode_cpu = 0.0
    for topic, count in counts.items():
        records = await sample(bootstrap, prefix + topic, SAMPLE_PER_TOPIC)
        if not records:
            continue
        decode_s, encode_s = codec_cpu(
            records, decode=topic in CONSUMED, encode=topic != PRODUCED_BY_LOAD
        )
        scale = count / len(records)
        decode_cpu += decode_s * scale
        encode_cpu += encode_s * scale
    rows, copy_cpu = await bulk_load_cpu(database_urls, classify)
    return Floor(
        mutations=counts.get(PRODUCED_BY_LOAD, 0),
        messages=counts,
        rows=rows,
        copy_cpu=copy_cpu,
        decode_cpu=decode_cpu,
        encode_cpu=encode_cpu,
    )
