"""A worker killed (SIGKILL) mid-batch and restarted leaves one dossier per mutation, one case
per kind, and one open_request per case in the outbox; one stopped while it holds unapplied
events stops, and the next applies them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaProducer
from mobility_factories import hr_event, new_ids, snapshot, start_service
from sqlalchemy import MetaData, text

from atlas_events.cloudevents import to_kafka
from atlas_events.db import Database
from atlas_events.kafka import ensure_topics
from atlas_events.outbox import EventTables, outbox_records
from atlas_events.schemas import requests
from atlas_events.testing import group_members, wait_until
from atlas_mobility.config import MobilitySettings
from atlas_mobility.stream.processor import AgentSpec, StreamProcessor
from atlas_mobility.stream.workers import StreamWorker
from atlas_mobility.topics import Topics

N = 400


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "atlas_mobility.worker"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def count(db: Database, sql: str) -> int:
    async with db.transaction() as session:
        try:
            return int(await session.scalar(text(sql)) or 0)
        except Exception:
            return 0  # the worker has not migrated the database yet


def worker_env(url: str, bootstrap: str, topics: Topics, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ATLAS_MOBILITY_DATABASE_URL": url,
        "ATLAS_MOBILITY_KAFKA_BOOTSTRAP": bootstrap,
        "ATLAS_MOBILITY_TOPIC_PREFIX": topics.prefix,
        "ATLAS_MOBILITY_AUTH_LOCAL_KEY_PATH": str(tmp_path / "jwt.pem"),
        "ATLAS_MOBILITY_STREAM_DATA_DIR": str(tmp_path / "stream"),
        "ATLAS_MOBILITY_STREAM_BATCH_SIZE": "10",
        "ATLAS_MOBILITY_STREAM_SESSION_TIMEOUT": "6",
        # Offsets lag the database by seconds: a worker taking over re-reads applied events.
        "ATLAS_MOBILITY_STREAM_COMMIT_INTERVAL": "3",
        "ATLAS_MOBILITY_LOG_LEVEL": "WARNING",
        "ATLAS_MOBILITY_LOG_JSON": "false",
    }


async def publish_mutations(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for _ in range(n):
            mutation_id, agent_id = new_ids()
            message = to_kafka(hr_event(snapshot(mutation_id, agent_id)), agent_id)
            await producer.send(
                topic, key=message.key, value=message.value, headers=message.headers
            )
        await producer.flush()
    finally:
        await producer.stop()


async def finish_with_a_second_worker(
    env: dict[str, str], log: Path, db: Database, *, mutations: int
) -> None:
    """Start a worker after the first was killed; stop it once every mutation and its two
    cases are in the database."""
    second = start_worker(env, log)
    try:

        async def done() -> bool:
            dossiers = await count(db, "SELECT count(*) FROM mobility_dossiers")
            cases = await count(db, "SELECT count(*) FROM mobility_cases")
            return dossiers == mutations and cases == 2 * mutations

        await wait_until(done, timeout=120, interval=0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)


async def applied_twice(db: Database) -> tuple[int, int]:
    """Mutations with a kind of case twice, and with an event applied twice."""
    per_kind = await count(
        db,
        "SELECT count(*) FROM (SELECT mutation_id, kind FROM mobility_cases "
        "GROUP BY mutation_id, kind HAVING count(*) > 1) AS twice",
    )
    events = await count(
        db,
        "SELECT count(*) FROM (SELECT mutation_id FROM mobility_timeline WHERE outcome = 'applied'"
        " AND event_id IS NOT NULL GROUP BY mutation_id HAVING count(*) > 1) AS twice",
    )
    return per_kind, events


async def test_worker_killed_mid_batch_and_restarted_applies_each_mutation_once(
    database_url: Callable[[], str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    url = database_url()
    topics = Topics(f"t{uuid.uuid4().hex[:8]}.")
    await ensure_topics(kafka_bootstrap, topics.registry)
    env = worker_env(url, kafka_bootstrap, topics, tmp_path)
    await publish_mutations(kafka_bootstrap, topics.hr, N)

    db = Database(url)
    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        seen = await wait_until(
            lambda: count(db, "SELECT count(*) FROM mobility_dossiers"), timeout=90, interval=0.02
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = await count(db, "SELECT count(*) FROM mobility_dossiers")
        assert 0 < seen <= at_kill < N, f"the kill came too late to be mid-run ({at_kill}/{N})"

        await finish_with_a_second_worker(env, log, db, mutations=N)
    finally:
        if first.poll() is None:
            first.kill()
        print(log.read_text()[-3000:])  # shown by pytest when the test fails

    assert await applied_twice(db) == (0, 0)
    await assert_each_case_asked_once(db, cases=2 * N, dossiers=N)
    await db.dispose()


async def assert_each_case_asked_once(db: Database, *, cases: int, dossiers: int) -> None:
    """The outbox holds one open_request per case (inside the command batches), never two."""
    async with db.transaction() as session:
        records = await outbox_records(session, EventTables(MetaData()))
    by_type: dict[str, list[bytes]] = {}
    for _, _, value, headers in records:
        assert value is not None
        by_type.setdefault(dict(headers)["ce_type"].decode(), []).append(value)
    opened = [
        c["case_id"]
        for value in by_type.get(requests.APPLY_CASE_COMMANDS, [])
        for c in json.loads(value)["commands"]
        if c["command"] == "open_request"
    ]
    assert len(opened) == cases
    assert len(set(opened)) == cases
    assert requests.OPEN_REQUEST not in by_type  # mobility sends its commands batched
    assert len(by_type["fr.defense.atlas.mobility.dossier.opened.v1"]) == dossiers


async def test_sigkill_after_batch_commits_before_offsets_rereads_and_applies_nothing_twice(
    database_url: Callable[[], str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The worker commits no offset at all (an hour's commit interval) and is killed once
    batches are in the database: every event it applied is read again by the next worker,
    recorded as a duplicate, and applied once."""
    url = database_url()
    topics = Topics(f"t{uuid.uuid4().hex[:8]}.")
    await ensure_topics(kafka_bootstrap, topics.registry)
    env = worker_env(url, kafka_bootstrap, topics, tmp_path)
    n = 120
    await publish_mutations(kafka_bootstrap, topics.hr, n)
    db = Database(url)
    log = tmp_path / "worker.log"
    first = start_worker({**env, "ATLAS_MOBILITY_STREAM_COMMIT_INTERVAL": "3600"}, log)
    try:

        async def some_batches_in() -> int:
            return max(0, await count(db, "SELECT count(*) FROM mobility_dossiers") - 30)

        await wait_until(some_batches_in, timeout=90, interval=0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        applied_before = await count(db, "SELECT count(*) FROM mobility_dossiers")
        await finish_with_a_second_worker(env, log, db, mutations=n)
    finally:
        if first.poll() is None:
            first.kill()
        print(log.read_text()[-3000:])  # shown by pytest when the test fails
    # No offset was committed: all the first worker applied was read again, as duplicates.
    duplicates = await count(
        db,
        "SELECT count(*) FROM mobility_timeline WHERE outcome = 'duplicate'"
        " AND event_id IS NOT NULL",
    )
    assert duplicates >= applied_before > 30
    assert await applied_twice(db) == (0, 0)
    await assert_each_case_asked_once(db, cases=2 * n, dossiers=n)
    await db.dispose()


async def test_a_worker_added_mid_burst_shares_the_work_and_each_mutation_applies_once(
    database_url: Callable[[], str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A scale-out (the HPA adds a worker) rebalances the group while the first worker is in the
    middle of a burst: nothing hangs, nothing is applied twice, both stop cleanly."""
    url = database_url()
    topics = Topics(f"t{uuid.uuid4().hex[:8]}.")
    await ensure_topics(kafka_bootstrap, topics.registry)
    env = worker_env(url, kafka_bootstrap, topics, tmp_path)
    wave = 600
    await publish_mutations(kafka_bootstrap, topics.hr, wave)
    db = Database(url)
    log = tmp_path / "workers.log"
    workers = [start_worker(env, log)]
    try:
        await wait_until(
            lambda: count(db, "SELECT count(*) FROM mobility_dossiers"), timeout=90, interval=0.05
        )
        workers.append(
            start_worker({**env, "ATLAS_MOBILITY_STREAM_DATA_DIR": str(tmp_path / "s2")}, log)
        )
        group = f"{topics.prefix}{MobilitySettings().stream_app_id}"

        async def both_in() -> bool:
            return await group_members(kafka_bootstrap, group) == 2

        await wait_until(both_in, timeout=90, interval=0.2)
        await publish_mutations(kafka_bootstrap, topics.hr, wave)

        async def done() -> bool:
            dossiers = await count(db, "SELECT count(*) FROM mobility_dossiers")
            cases = await count(db, "SELECT count(*) FROM mobility_cases")
            return dossiers == 2 * wave and cases == 4 * wave

        await wait_until(done, timeout=120, interval=0.2)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(30) == 0  # a clean stop, not a kill after a hang
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        print(log.read_text()[-3000:])  # shown by pytest when the test fails
    assert await applied_twice(db) == (0, 0)
    await db.dispose()


async def test_graceful_stop_with_events_taken_but_not_applied_returns_and_loses_none(
    database_url: Callable[[], str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A worker asked to stop while an agent holds events it has not applied yet (a lagging
    agent at a rolling update) finishes the batch in hand and stops; the next worker applies
    the rest. Until this was fixed faust waited forever for those events' acknowledgements
    while the agent waited for the lock the stopping processor held."""
    url = database_url()
    prefix = f"t{uuid.uuid4().hex[:8]}."
    events = 30
    options = {"topic_prefix": prefix, "stream_batch_size": 5}
    first = contextlib.asynccontextmanager(start_service)(
        database_url=url, bootstrap=kafka_bootstrap, key_path=tmp_path / "jwt.pem", **options
    )
    service = await first.__aenter__()
    processor = next(
        c.processor for c in service.app.state.runtime.consumers if isinstance(c, StreamWorker)
    )
    in_hand, release = asyncio.Event(), asyncio.Event()
    apply = processor.process

    async def held_back(spec: Any, records: Any) -> None:
        if spec.name == "ingest" and not in_hand.is_set():
            in_hand.set()
            await release.wait()  # the first batch is in hand while the others arrive
        await apply(spec, records)

    processor.process = held_back  # type: ignore[method-assign]
    mutations = [new_ids() for _ in range(events)]
    for mutation_id, agent_id in mutations:
        await service.publish_hr(hr_event(snapshot(mutation_id, agent_id)))
    await asyncio.wait_for(in_hand.wait(), timeout=30)
    await asyncio.sleep(1)  # the rest are fetched into the agent's stream meanwhile
    stopping = asyncio.create_task(first.__aexit__(None, None, None))
    await asyncio.sleep(0.5)
    release.set()
    await asyncio.wait_for(stopping, timeout=30)  # was: never

    db = Database(url)
    try:
        applied = await count(db, "SELECT count(*) FROM mobility_dossiers")
        assert 0 < applied < events, f"the stop was meant to leave events unapplied ({applied})"
        second = contextlib.asynccontextmanager(start_service)(
            database_url=url, bootstrap=kafka_bootstrap, key_path=tmp_path / "jwt.pem", **options
        )
        async with second:

            async def all_applied() -> bool:
                return await count(db, "SELECT count(*) FROM mobility_dossiers") == events

            await wait_until(all_applied, timeout=60, interval=0.2)
        twice = await count(
            db,
            "SELECT count(*) FROM (SELECT mutation_id FROM mobility_timeline"
            " WHERE outcome = 'applied' AND event_id IS NOT NULL"
            " GROUP BY mutation_id HAVING count(*) > 1) AS twice",
        )
        assert twice == 0
    finally:
        await db.dispose()


class _ClearedStream:
    """A faust stream as a rebalance leaves it: one take came, its queue was cleared since."""

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.acked: list[Any] = []
        self.channel = SimpleNamespace(queue=SimpleNamespace(qsize=lambda: 500))  # looked busy

    async def noack_take(self, max_: int, within: float) -> AsyncIterator[list[Any]]:
        yield self.events
        await asyncio.Event().wait()  # faust yields no empty take: nothing comes any more

    async def ack(self, event: Any) -> None:
        self.acked.append(event)


async def test_a_take_is_applied_and_acknowledged_without_waiting_for_the_next() -> None:
    """Held back for a next take that never came, a take's events stayed unacknowledged and
    faust's rebalance waited for them for ever (seen in a benchmark run on one core)."""
    outbox: Any = SimpleNamespace(tables=None)
    processor = StreamProcessor(
        settings=MobilitySettings(stream_batch_size=20), context=None, db=None, outbox=outbox
    )  # type: ignore[arg-type]
    applied: list[list[int]] = []

    async def process(spec: Any, records: Any) -> None:
        applied.append([r.offset for r in records])

    processor.process = process  # type: ignore[method-assign]
    message = SimpleNamespace(topic="t", partition=0, key=b"k", value=b"{}", headers=[])
    events = [SimpleNamespace(message=SimpleNamespace(**vars(message), offset=o)) for o in (7, 8)]
    stream = _ClearedStream(events)
    spec = AgentSpec("ingest", "t", frozenset(), apply=None, dedupe=False)  # type: ignore[arg-type]
    consuming = asyncio.create_task(processor.consume(spec, stream))
    try:

        async def acknowledged() -> bool:
            return stream.acked == events

        await wait_until(acknowledged, timeout=5, interval=0.05)
    finally:
        consuming.cancel()
    assert applied == [[7, 8]]
