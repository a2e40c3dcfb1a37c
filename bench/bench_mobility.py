"""Mobility: an annual-plan burst of mutations, and steady 100 mutations/s latency.

Burst: N HR mutation events (default 50,000; `--quick` 2,000; `ATLAS_BENCH_MOBILITY_N` sets N in
either mode) with a realistic household mix are published to `hr.mutations.v1` while the service
runs in-process (API, faust agents, relay) and the requests service runs its worker in its own
process (as deployed: the command consumer and its relay, its own database); the clock stops
when every dossier and case is in mobility's database, every outbox row is published, and every
resulting request exists in the requests service's database; the CPU the burst took until then
is charged to the parts of the system (mobility workers, requests worker, PostgreSQL, Kafka, this
process) from /proc, per 1,000 mutations. Steady: 100 mutations/s; latency
from publish to all of a mutation's cases being visible in the database (polled every 20 ms),
p50 and p99.

Baseline, same broker, same run: raw aiokafka consume-and-produce of the same messages (read
the HR topic, write each message to another topic, commit), as throughput for the burst and as
publish-to-consumed latency at the same 100 messages/s for the steady phase.

Floor, same run, after the deployed shape's steady phase (`bench/floor.py`): what the work the
contracts require of a mutation costs at raw speed (its messages moved at the baseline's CPU per
message, its rows bulk-loaded again with binary COPY, what the services consume decoded and
validated, what they produce encoded), per 1,000 mutations, against the CPU target.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text

from bench.common import CpuSnapshot, Result, cpu_used, percentile
from bench.floor import Floor
from bench.floor import measure as measure_floor

BENCH_PG_PORT = 25474
BENCH_KAFKA_PORT = 29192
BENCH_KAFKA_CONTROLLER_PORT = 29193
STEADY_RATE = 100
# Mobility worker processes beside the API: 0 is everything in one process (local mode); the
# worker Deployment runs at least DEPLOYED_WORKERS replicas (its HorizontalPodAutoscaler's min).
DEPLOYED_WORKERS = 2
SHAPES = (0, DEPLOYED_WORKERS)
BURST_TARGET_S = 45.0
# CPU per mutation over every process (services, PostgreSQL, Kafka, the load), issue #21.
CPU_TARGET_MS = 1.2
STEADY_P99_TARGET_MS = 1000
BURST_TARGET_N = 50_000
# The bench's own process: the load, the polls, and the mobility API (in the one-process shape,
# the agents and the relay too).
BENCH_PROCESS = "bench process (API, load)"
CPU_CLASSES = ("mobility workers", "requests worker", "PostgreSQL", "Kafka", BENCH_PROCESS, "other")


def shapes() -> tuple[int, ...]:
    """The shapes to measure: SHAPES, or `ATLAS_BENCH_MOBILITY_SHAPES` (e.g. `2` for only the
    deployed one, when profiling it)."""
    given = os.environ.get("ATLAS_BENCH_MOBILITY_SHAPES")
    return tuple(int(w) for w in given.split(",")) if given else SHAPES


@asynccontextmanager
async def infrastructure() -> AsyncIterator[tuple[str, Any]]:
    """(kafka bootstrap, PostgreSQL endpoint): ATLAS_TEST_* servers if given, else local bench
    ones."""
    from atlas_devstack.kafka import KafkaBroker
    from atlas_devstack.paths import atlas_dir
    from atlas_devstack.postgres import PostgresEndpoint, PostgresServer

    broker: KafkaBroker | None = None
    server: PostgresServer | None = None
    pg_started = False
    bootstrap = os.environ.get("ATLAS_TEST_KAFKA_BOOTSTRAP")
    if not bootstrap:
        broker = KafkaBroker(
            atlas_dir() / "bench" / "kafka-mobility",
            port=BENCH_KAFKA_PORT,
            controller_port=BENCH_KAFKA_CONTROLLER_PORT,
            heap="1g",
        )
        if not broker.is_running():
            # A scratch broker: every run makes its own topics, and what earlier runs left only
            # fills the disk (15 GB in 6,600 partition directories after some sixty runs).
            shutil.rmtree(broker.data_dir, ignore_errors=True)
        broker.start()
        broker.wait_ready(120)
        bootstrap = broker.bootstrap
    given = os.environ.get("ATLAS_TEST_POSTGRES_URL")
    if given:
        endpoint = PostgresEndpoint.from_url(given)
    else:
        server = PostgresServer(atlas_dir() / "bench" / "pg-mobility", port=BENCH_PG_PORT)
        server.ensure_installed()
        server.init()
        pg_started = not server.is_running()
        if pg_started:
            server.start()
        server.wait_ready()
        endpoint = server.endpoint
    try:
        yield bootstrap, endpoint
    finally:
        if server is not None and pg_started:
            server.stop()
        if broker is not None:
            broker.stop()


@asynccontextmanager
async def databases(endpoint: Any) -> AsyncIterator[tuple[str, str]]:
    """(mobility database url, requests database url), new and dropped afterwards."""
    name = f"atlas_bench_mobility_{secrets.token_hex(4)}"
    requests_name = f"{name}_requests"
    endpoint.create_database(name)
    endpoint.create_database(requests_name)
    try:
        yield endpoint.url(name), endpoint.url(requests_name)
    finally:
        endpoint.drop_database(name)
        endpoint.drop_database(requests_name)


class Plan:
    """Realistic mutations: household mix, destinations among the spaces, some uncovered."""

    def __init__(self, refdata: Path, seed: int = 7) -> None:
        spaces = json.loads((refdata / "spaces.json").read_text(encoding="utf-8"))
        self.communes = [c for s in spaces for c in (s["commune_insee"], *s["covers"])]
        self.rng = random.Random(seed)
        self.today = date.today()
        self.counter = 0

    def mutation(self) -> dict[str, Any]:
        from atlas_events.schemas import hr

        rng = self.rng
        self.counter += 1
        n = self.counter
        report = self.today + timedelta(days=rng.randint(60, 300))
        children = [
            {
                "child_ref": f"c{i}",
                "birth_date": (report - timedelta(days=rng.randint(0, 21 * 365))).isoformat(),
            }
            for i in range(rng.choices((0, 1, 2, 3), weights=(45, 20, 25, 10))[0])
        ]
        destination = "98611" if rng.random() < 0.02 else rng.choice(self.communes)
        data = {
            **hr.CONTRACT_EXAMPLE,
            "mutation_id": f"BENCH-{uuid.uuid4().hex[:10]}-{n}",
            "agent": {**hr.CONTRACT_EXAMPLE["agent"], "agent_id": f"{n:010d}"},  # type: ignore[dict-item]
            "origin": {"unit": "Unité", "commune_insee": rng.choice(self.communes)},
            "destination": {"unit": "Unité", "commune_insee": destination},
            "report_date": report.isoformat(),
            "household": {"partner": rng.random() < 0.7, "children": children},
            "needs": {"housing": rng.random() < 0.7, "move": rng.random() < 0.85},
        }
        return data

    def expected_cases(self, data: dict[str, Any], policy: Any) -> int:
        from atlas_mobility.policy import policy as pol

        if data["destination"]["commune_insee"] == "98611":
            return 0
        report = date.fromisoformat(data["report_date"])
        kids = pol.school_children(
            policy.cases.scolarite,
            [
                (c["child_ref"], date.fromisoformat(c["birth_date"]))
                for c in data["household"]["children"]
            ],
            report,
        )
        return int(data["needs"]["housing"]) + int(data["needs"]["move"]) + int(bool(kids))


def encode(data: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    from atlas_events.cloudevents import CloudEvent, to_kafka
    from atlas_events.schemas import hr

    message = to_kafka(
        CloudEvent.create(hr.MUTATION_ANNOUNCED, "urn:atlas:rh:bench", data),
        data["agent"]["agent_id"],
    )
    assert message.key is not None
    assert message.value is not None
    return message.key, message.value, message.headers


@asynccontextmanager
async def worker_process(module: str, env: dict[str, str], log: Path) -> AsyncIterator[Any]:
    """`python -m module` with `env`, output to `log`; stopped with SIGTERM (its log tail
    printed if it failed)."""
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
        if process.returncode not in (0, -signal.SIGTERM):
            print((await asyncio.to_thread(log.read_text, errors="replace"))[-3000:])


@asynccontextmanager
async def mobility_service(
    bootstrap: str, database_url: str, prefix: str, workers: int
) -> AsyncIterator[Any]:
    """The mobility service: its API process, running the faust agents and relay itself when
    `workers` is 0, else beside `workers` worker processes (`python -m atlas_mobility.worker`,
    as deployed: the worker Deployment runs at least two replicas)."""
    from atlas_events.testing import group_members, wait_until
    from atlas_mobility.app import create
    from atlas_mobility.config import MobilitySettings

    with tempfile.TemporaryDirectory() as tmp:
        settings = MobilitySettings(
            database_url=database_url,
            kafka_bootstrap=bootstrap,
            auth_local_key_path=Path(tmp) / "jwt.pem",
            stream_data_dir=Path(tmp) / "stream",
            run_workers=workers == 0,
            topic_prefix=prefix,
            log_level="WARNING",
            reminder_interval_seconds=300,
        )
        app = create(settings)
        async with app.router.lifespan_context(app), contextlib.AsyncExitStack() as stack:
            runtime = app.state.runtime
            if workers == 0:

                async def started() -> bool:
                    return all(c.started.is_set() for c in runtime.consumers)

                await wait_until(started, timeout=120)
                yield runtime
                return
            env = {
                **os.environ,
                "ATLAS_MOBILITY_DATABASE_URL": database_url,
                "ATLAS_MOBILITY_KAFKA_BOOTSTRAP": bootstrap,
                "ATLAS_MOBILITY_TOPIC_PREFIX": prefix,
                "ATLAS_MOBILITY_AUTH_LOCAL_KEY_PATH": str(Path(tmp) / "jwt.pem"),
                "ATLAS_MOBILITY_REMINDER_INTERVAL_SECONDS": "300",
                "ATLAS_MOBILITY_LOG_LEVEL": "WARNING",
            }
            for i in range(workers):
                await stack.enter_async_context(
                    worker_process(
                        "atlas_mobility.worker",
                        {**env, "ATLAS_MOBILITY_STREAM_DATA_DIR": str(Path(tmp) / f"stream-{i}")},
                        Path(tmp) / f"mobility-worker-{i}.log",
                    )
                )
            group = f"{prefix}{settings.stream_app_id}"

            async def assigned() -> bool:
                return await group_members(bootstrap, group) == workers

            await wait_until(assigned, timeout=120, interval=0.5)
            yield runtime


@asynccontextmanager
async def requests_worker(
    bootstrap: str, database_url: str, prefix: str, refdata: Path
) -> AsyncIterator[Any]:
    """The requests service's worker process (command consumer, relay) on its own database,
    its catalog replica seeded from the reference data; yields that database."""
    from atlas_events.db import Database
    from atlas_events.testing import wait_until

    env = {
        **os.environ,
        "ATLAS_REQUESTS_DATABASE_URL": database_url,
        "ATLAS_REQUESTS_KAFKA_BOOTSTRAP": bootstrap,
        "ATLAS_REQUESTS_COMMANDS_TOPIC": f"{prefix}requests.commands.v1",
        # Its events (request submitted, status changed) on the run's topics, where mobility's
        # request-status agent reads them: the status flowing back is part of the load.
        "ATLAS_REQUESTS_TOPIC_PREFIX": prefix,
        "ATLAS_REQUESTS_PRESTATIONS_TOPIC": f"{prefix}catalog.prestations.v1",
        "ATLAS_REQUESTS_SPACES_TOPIC": f"{prefix}catalog.spaces.v1",
        "ATLAS_REQUESTS_CONSUMER_GROUP_SUFFIX": f".{prefix}",
        "ATLAS_REQUESTS_SLA_CHECK_SECONDS": "300",
        "ATLAS_REQUESTS_LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as tmp:
        env["ATLAS_REQUESTS_AUTH_LOCAL_KEY_PATH"] = str(Path(tmp) / "jwt.pem")
        db = Database(database_url)
        try:
            async with worker_process(
                "atlas_requests.worker", env, Path(tmp) / "requests.log"
            ) as process:

                async def migrated() -> bool:
                    async with db.transaction() as session:
                        found = await session.scalar(text("SELECT to_regclass('requests')"))
                    return found is not None and process.returncode is None

                await wait_until(migrated, timeout=120, interval=0.2)
                await seed_requests_catalog(db, refdata)
                yield db
        finally:
            await db.dispose()


async def seed_requests_catalog(db: Any, refdata: Path) -> None:
    """The requests service's catalog replica: every prestation and space of the reference."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    prestations = json.loads((refdata / "prestations.json").read_text(encoding="utf-8"))
    spaces = json.loads((refdata / "spaces.json").read_text(encoding="utf-8"))
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO replica_prestations (code, version, title, category, channels,"
                " essential, crisis_only, sla_days, withdrawn, updated_at) VALUES (:code, 1,"
                " :title, :category, CAST(:channels AS JSON), :essential, :crisis_only,"
                " :sla_days, false, :now) ON CONFLICT DO NOTHING"
            ),
            [
                {
                    "code": p["code"],
                    "title": p["title"][:200],
                    "category": p.get("domain", "")[:40],
                    "channels": json.dumps(p.get("channels", [])),
                    "essential": bool(p.get("essential")),
                    "crisis_only": bool(p.get("crisis_only")),
                    "sla_days": p.get("sla_days"),
                    "now": now,
                }
                for p in prestations
            ],
        )
        await session.execute(
            text(
                "INSERT INTO replica_spaces (atlas_id, version, name, commune_insee, departement,"
                " overseas, crisis_mode, communes_covered, updated_at) VALUES (:atlas_id, 1,"
                " :name, :commune, :departement, :overseas, false, CAST(:covers AS JSON), :now)"
                " ON CONFLICT DO NOTHING"
            ),
            [
                {
                    "atlas_id": sp["atlas_id"],
                    "name": sp["name"][:200],
                    "commune": sp["commune_insee"],
                    "departement": sp["departement"][:3],
                    "overseas": sp.get("zone", "metro") != "metro",
                    "covers": json.dumps(sp.get("covers", [])),
                    "now": now,
                }
                for sp in spaces
            ],
        )


async def count_rows(db: Any, sql: str) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(text(sql)) or 0)


async def db_counts(db: Any) -> tuple[int, int, int]:
    async with db.transaction() as session:
        dossiers = await session.scalar(text("SELECT count(*) FROM mobility_dossiers"))
        cases = await session.scalar(text("SELECT count(*) FROM mobility_cases"))
        pending = await session.scalar(
            text("SELECT count(*) FROM atlas_outbox WHERE published_at IS NULL")
        )
    return int(dossiers or 0), int(cases or 0), int(pending or 0)


def process_class(pid: int, command: str) -> str:
    """Which part of the system a process is, for the burst's CPU accounting."""
    if pid == os.getpid():
        return BENCH_PROCESS
    if "atlas_mobility.worker" in command:
        return "mobility workers"
    if "atlas_requests.worker" in command:
        return "requests worker"
    if command.startswith("postgres:") or command.split(" ", 1)[0].endswith("/postgres"):
        return "PostgreSQL"
    if " kafka.Kafka " in command:
        return "Kafka"
    return "other"


@dataclass(frozen=True)
class Burst:
    persisted_s: float  # every dossier, case and request persisted
    settled_s: float  # and every case knows its request's status (the request events came back)
    cpu: dict[str, float]  # CPU seconds by process class until persisted (`cpu_used`)


async def burst(
    runtime: Any, requests_db: Any, bootstrap: str, topic: str, messages: list[Any], cases: int
) -> Burst:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    cpu_before = CpuSnapshot.take()
    started = time.perf_counter()
    try:
        for key, value, headers in messages:
            await producer.send(topic, key=key, value=value, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()
    from atlas_events.testing import wait_until

    # Each poll counts hundreds of thousands of rows, charged to PostgreSQL's CPU (a tenth of it
    # when polled every 0.5 s from the start): while dossiers are missing, the next poll comes
    # when the rate so far says most of them will be there, and every 0.5 s near the end. The
    # requests are counted only once mobility is done.
    async def persisted() -> bool:
        dossiers, done_cases, pending = await db_counts(runtime.db)
        if dossiers < len(messages):
            rate = dossiers / max(time.perf_counter() - started, 1e-3)
            if rate > 0:
                await asyncio.sleep(min(10.0, 0.7 * (len(messages) - dossiers) / rate))
            return False
        if done_cases < cases or pending:
            return False
        sql = "SELECT count(*) FROM requests WHERE case_id IS NOT NULL"
        return await count_rows(requests_db, sql) >= cases

    async def settled() -> bool:
        # A case holds its request's id from the start; its status is known once the request
        # event has come back from the requests service.
        sql = "SELECT count(*) FROM mobility_cases WHERE request_status IS NULL"
        return await count_rows(runtime.db, sql) == 0

    await wait_until(persisted, timeout=3600, interval=0.5)
    persisted_s = time.perf_counter() - started
    cpu = cpu_used(cpu_before, CpuSnapshot.take(), process_class)
    # The steady run after this one must not share the machine with the burst's tail.
    await wait_until(settled, timeout=600, interval=0.5)
    return Burst(persisted_s, time.perf_counter() - started, cpu)


async def steady(
    runtime: Any, bootstrap: str, topic: str, plan: Plan, policy: Any, seconds: float
) -> list[float]:
    """Publish at STEADY_RATE/s; latency until all of a mutation's cases are in the database."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    sent: dict[str, tuple[float, int]] = {}
    latencies: list[float] = []
    stop = asyncio.Event()

    async def poll() -> None:
        while not stop.is_set() or len(latencies) < len(sent):
            waiting = [m for m in sent if m not in seen]
            if waiting:
                async with runtime.db.transaction() as session:
                    rows = (
                        await session.execute(
                            text(
                                "SELECT mutation_id, count(*) FROM mobility_cases "
                                "WHERE mutation_id = ANY(:ids) GROUP BY mutation_id"
                            ),
                            {"ids": waiting},
                        )
                    ).all()
                now = time.perf_counter()
                for mutation_id, count in rows:
                    published, expected = sent[mutation_id]
                    if count >= expected and mutation_id not in seen:
                        seen.add(mutation_id)
                        latencies.append(now - published)
            await asyncio.sleep(0.02)

    seen: set[str] = set()
    poller = asyncio.create_task(poll())
    try:
        interval = 1 / STEADY_RATE
        start = time.perf_counter()
        for i in range(int(seconds * STEADY_RATE)):
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
            data = plan.mutation()
            expected = plan.expected_cases(data, policy)
            if expected == 0:
                continue
            key, value, headers = encode(data)
            await producer.send_and_wait(topic, key=key, value=value, headers=headers)
            sent[data["mutation_id"]] = (time.perf_counter(), expected)
        stop.set()
        await asyncio.wait_for(poller, timeout=120)
    finally:
        stop.set()
        poller.cancel()
        await producer.stop()
    return latencies


# A new broker spends its first tens of seconds compiling its own code (the JIT) and sizing its
# heap: in a burst that followed its start, that was two thirds of the broker's CPU, which a
# broker that has been running for days does not spend.
WARM_UP_MESSAGES = 20_000


async def warm_up(bootstrap: str, messages: list[Any]) -> None:
    """Publish the messages to a scratch topic and pipe them to another, as the baseline does."""
    from atlas_devstack.pytest_plugin import create_topic

    names = [f"bench-warm-up-{uuid.uuid4().hex[:6]}.{part}" for part in ("in", "out")]
    for name in names:
        await create_topic(bootstrap, name, 6)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        for key, value, headers in messages:
            await producer.send(names[0], key=key, value=value, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()
    await raw_pipe(bootstrap, names[0], names[1], len(messages), f"{names[0]}-pipe")


async def raw_pipe(bootstrap: str, source: str, sink: str, count: int, group: str) -> None:
    """Consume `count` messages and produce each to `sink`, committing as we go (the baseline)."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await consumer.start()
    await producer.start()
    try:
        done = 0
        while done < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            for records in batches.values():
                for record in records:
                    await producer.send(
                        sink, key=record.key, value=record.value, headers=list(record.headers)
                    )
                done += len(records)
            await producer.flush()
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


async def raw_steady_latency(bootstrap: str, messages: list[Any], prefix: str) -> list[float]:
    """Publish-to-consumed latency through a raw consume-and-produce pipe at STEADY_RATE/s."""
    from atlas_events.kafka import ensure_topics
    from atlas_events.registry import EventType, Topic, TopicRegistry
    from atlas_events.schemas import hr

    names = (f"{prefix}raw.in", f"{prefix}raw.out")
    await ensure_topics(
        bootstrap,
        TopicRegistry(
            Topic(
                name=name,
                key="agent_id",
                partitions=6,
                cleanup_policy="delete",
                events=(EventType(f"bench.{i}", hr.MutationAnnounced, "bench"),),
                description="bench",
                owner="bench",
                public=False,
            )
            for i, name in enumerate(names)
        ),
    )
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    reader = AIOKafkaConsumer(
        names[1], bootstrap_servers=bootstrap, group_id=f"{prefix}raw-reader",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await reader.start()
    pipe = asyncio.create_task(
        raw_pipe(bootstrap, names[0], names[1], len(messages), f"{prefix}raw-pipe")
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()

    async def read() -> None:
        while len(latencies) < len(messages):
            batches = await reader.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    latencies.append(now - sent[record.value])

    reading = asyncio.create_task(read())
    try:
        start = time.perf_counter()
        for i, (key, value, headers) in enumerate(messages):
            await asyncio.sleep(max(0.0, start + i / STEADY_RATE - time.perf_counter()))
            sent[value] = time.perf_counter()
            await producer.send_and_wait(names[0], key=key, value=value, headers=headers)
        await asyncio.wait_for(asyncio.gather(reading, pipe), timeout=120)
    finally:
        await producer.stop()
        await reader.stop()
    return latencies


def floor_results(name: str, floor: Floor, raw_cpu: dict[str, float], moved: int) -> list[Result]:
    """The floor of the deployed burst's required work, per 1,000 mutations (bench/floor.py);
    `raw_cpu` is the baseline's CPU by process class, for `moved` messages."""
    mutations = max(floor.mutations, 1)
    rows = sum(floor.rows.values()) / mutations
    moves = floor.moves() / mutations
    broker = raw_cpu.get("Kafka", 0.0) / moved
    client = raw_cpu.get(BENCH_PROCESS, 0.0) / moved
    parts = {
        f"Kafka broker, {moves:.1f} message moves per mutation at the raw baseline's broker CPU"
        " per move": floor.moves() * broker,
        f"Kafka clients (aiokafka), {moves:.1f} moves per mutation at the raw baseline's client"
        " CPU per move": floor.moves() * client,
        f"PostgreSQL, binary COPY of the {rows:.1f} rows per mutation the services wrote": (
            floor.copy_cpu
        ),
        "decoding and validating what the services consume": floor.decode_cpu,
        "encoding what the services produce": floor.encode_cpu,
    }
    results = [
        Result(name, f"floor: messages per mutation on {topic}", count / mutations, "messages")
        for topic, count in floor.messages.items()
    ]
    results.extend(
        Result(name, f"floor: rows per mutation in {table}", count / mutations, "rows")
        for table, count in floor.rows.items()
    )
    for part, cpu in parts.items():
        results.append(Result(name, f"floor: {part}, per 1,000", floor.per_1000(cpu), "CPU s"))
    results.append(
        Result(
            name,
            "floor: the required work at raw speed, per 1,000 mutations",
            floor.per_1000(sum(parts.values())),
            "CPU s",
            higher_is_better=False,
            target=f"≤ {CPU_TARGET_MS} CPU s",
        )
    )
    return results


async def run(quick: bool) -> list[Result]:
    from atlas_events.kafka import ensure_topics
    from atlas_events.registry import REGISTRY
    from atlas_mobility.config import MobilitySettings
    from atlas_mobility.policy.policy import load_policy
    from atlas_mobility.topics import Topics

    n = int(os.environ.get("ATLAS_BENCH_MOBILITY_N") or (2_000 if quick else 50_000))
    steady_seconds = 10.0 if quick else 60.0
    settings = MobilitySettings()
    assert settings.refdata_dir is not None
    policy = load_policy(settings.milestone_policy_path)
    plan = Plan(settings.refdata_dir)
    results: list[Result] = []
    datas = [plan.mutation() for _ in range(n)]
    expected = sum(plan.expected_cases(d, policy) for d in datas)
    messages = [encode(d) for d in datas]
    refdata = settings.refdata_dir
    bursts: dict[int, Burst] = {}
    async with infrastructure() as (bootstrap, endpoint):
        await ensure_topics(bootstrap, REGISTRY)  # the requests service's own event topics
        await warm_up(bootstrap, messages[:WARM_UP_MESSAGES])
        # The same burst against each shape of the service, on new databases and topics.
        for workers in shapes():
            prefix = f"bench{uuid.uuid4().hex[:6]}."
            topics = Topics(prefix)
            await ensure_topics(bootstrap, topics.registry)
            async with (
                databases(endpoint) as (database_url, requests_url),
                requests_worker(bootstrap, requests_url, prefix, refdata) as requests_db,
                mobility_service(bootstrap, database_url, prefix, workers) as runtime,
            ):
                bursts[workers] = await burst(
                    runtime, requests_db, bootstrap, topics.hr, messages, expected
                )
                if workers == DEPLOYED_WORKERS:
                    latencies = await steady(
                        runtime, bootstrap, topics.hr, plan, policy, steady_seconds
                    )
                    urls = {"mobility": database_url, "requests": requests_url}
                    floor = await measure_floor(
                        bootstrap,
                        topics.registry,
                        prefix,
                        {name: url.replace("+asyncpg", "") for name, url in urls.items()},
                        process_class,
                    )

        # Baseline: the same messages, consumed from the same topic and produced elsewhere.
        sink = f"{prefix}raw.burst"
        from atlas_devstack.pytest_plugin import create_topic

        await create_topic(bootstrap, sink, 6)
        cpu_before = CpuSnapshot.take()
        started = time.perf_counter()
        await raw_pipe(bootstrap, topics.hr, sink, n, f"{prefix}raw-burst")
        raw_s = time.perf_counter() - started
        raw_classes = cpu_used(cpu_before, CpuSnapshot.take(), process_class)
        raw_cpu = raw_classes["machine"]
        raw_latencies = await raw_steady_latency(
            bootstrap, [encode(plan.mutation()) for _ in range(int(steady_seconds * STEADY_RATE))],
            prefix,
        )  # fmt: skip

    name = "mobility"
    for workers, measured in bursts.items():
        burst_s, settled_s, cpu = measured.persisted_s, measured.settled_s, measured.cpu
        shape = (
            "one process (API, agents, relay)"
            if workers == 0
            else f"API + {workers} worker processes (as deployed)"
        )
        results.append(
            Result(name, f"burst {n:,} mutations → dossiers, {expected:,} cases, requests;"
                   f" {shape}", burst_s, "s", "raw aiokafka consume+produce", raw_s,
                   higher_is_better=False,
                   target=f"≤ {BURST_TARGET_S:.0f} s (50,000)" if workers == DEPLOYED_WORKERS
                   else None)
        )  # fmt: skip
        results.append(
            Result(name, f"burst throughput; {shape}", n / burst_s, "mutations/s",
                   "raw aiokafka consume+produce", n / raw_s)
        )  # fmt: skip
        results.append(
            Result(name, f"burst until each case knows its request status; {shape}",
                   settled_s, "s", "raw aiokafka consume+produce", raw_s,
                   higher_is_better=False)
        )  # fmt: skip
        # Where the burst's CPU went, per 1,000 mutations: what sizes the nodes when the
        # services, PostgreSQL and Kafka no longer share two cores.
        per_1000 = 1000 / n
        results.append(
            Result(name, f"burst CPU per 1,000 mutations, whole machine; {shape}",
                   cpu["machine"] * per_1000, "CPU s", "raw aiokafka consume+produce",
                   raw_cpu * per_1000, higher_is_better=False,
                   target=f"≤ {CPU_TARGET_MS} CPU s" if workers == DEPLOYED_WORKERS else None)
        )  # fmt: skip
        if workers == DEPLOYED_WORKERS:
            for part in CPU_CLASSES:
                results.append(
                    Result(name, f"  of which {part}", cpu.get(part, 0.0) * per_1000, "CPU s")
                )
            results.append(
                Result(name, f"cores on which {BURST_TARGET_N:,} mutations' CPU fits in"
                       f" {BURST_TARGET_S:.0f} s (if spread evenly); {shape}",
                       cpu["machine"] / n * BURST_TARGET_N / BURST_TARGET_S, "cores")
            )  # fmt: skip
    if DEPLOYED_WORKERS in bursts:
        results.extend(floor_results(name, floor, raw_classes, n))
    ms = [x * 1000 for x in latencies]
    raw_ms = [x * 1000 for x in raw_latencies]
    results.append(
        Result(name, f"steady {STEADY_RATE}/s publish → cases visible p50", percentile(ms, 50),
               "ms", "raw consume+produce p50", percentile(raw_ms, 50), higher_is_better=False)
    )  # fmt: skip
    results.append(
        Result(name, f"steady {STEADY_RATE}/s publish → cases visible p99", percentile(ms, 99),
               "ms", "raw consume+produce p99", percentile(raw_ms, 99), higher_is_better=False,
               target=f"≤ {STEADY_P99_TARGET_MS} ms")
    )  # fmt: skip
    return results
