"""A worker killed (SIGKILL) mid-batch and restarted leaves one dossier per mutation, one case
per kind, and one open_request per case in the outbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer
from mobility_factories import hr_event, new_ids, snapshot
from sqlalchemy import text

from atlas_events.cloudevents import to_kafka
from atlas_events.db import Database
from atlas_events.kafka import ensure_topics
from atlas_events.schemas import requests
from atlas_events.testing import wait_until
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


async def test_worker_killed_mid_batch_and_restarted_applies_each_mutation_once(
    database_url: Callable[[], str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    url = database_url()
    topics = Topics(f"t{uuid.uuid4().hex[:8]}.")
    await ensure_topics(kafka_bootstrap, topics.registry)
    env = {
        **os.environ,
        "ATLAS_MOBILITY_DATABASE_URL": url,
        "ATLAS_MOBILITY_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ATLAS_MOBILITY_TOPIC_PREFIX": topics.prefix,
        "ATLAS_MOBILITY_AUTH_LOCAL_KEY_PATH": str(tmp_path / "jwt.pem"),
        "ATLAS_MOBILITY_STREAM_DATA_DIR": str(tmp_path / "stream"),
        "ATLAS_MOBILITY_STREAM_BATCH_SIZE": "10",
        "ATLAS_MOBILITY_STREAM_SESSION_TIMEOUT": "6",
        # Offsets lag the database by seconds: the restarted worker re-reads applied events.
        "ATLAS_MOBILITY_STREAM_COMMIT_INTERVAL": "3",
        "ATLAS_MOBILITY_LOG_LEVEL": "WARNING",
        "ATLAS_MOBILITY_LOG_JSON": "false",
    }
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for _ in range(N):
            mutation_id, agent_id = new_ids()
            message = to_kafka(hr_event(snapshot(mutation_id, agent_id)), agent_id)
            await producer.send(
                topics.hr, key=message.key, value=message.value, headers=message.headers
            )
        await producer.flush()
    finally:
        await producer.stop()

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

        second = start_worker(env, log)
        try:

            async def done() -> bool:
                dossiers = await count(db, "SELECT count(*) FROM mobility_dossiers")
                cases = await count(db, "SELECT count(*) FROM mobility_cases")
                return dossiers == N and cases == 2 * N

            await wait_until(done, timeout=120, interval=0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        print(log.read_text()[-3000:])  # shown by pytest when the test fails

    per_kind = await count(
        db,
        "SELECT count(*) FROM (SELECT mutation_id, kind FROM mobility_cases "
        "GROUP BY mutation_id, kind HAVING count(*) > 1) AS twice",
    )
    assert per_kind == 0
    applied_twice = await count(
        db,
        "SELECT count(*) FROM (SELECT mutation_id FROM mobility_timeline WHERE outcome = 'applied'"
        " AND event_id IS NOT NULL GROUP BY mutation_id HAVING count(*) > 1) AS twice",
    )
    assert applied_twice == 0
    async with db.transaction() as session:
        outbox = (
            await session.execute(
                text("SELECT event_type, count(*) FROM atlas_outbox GROUP BY event_type")
            )
        ).all()
    by_type = dict(outbox)
    assert by_type[requests.OPEN_REQUEST] == 2 * N  # one command per case, never two
    assert by_type["fr.defense.atlas.mobility.dossier.opened.v1"] == N
    await db.dispose()
