"""Fault injection: the platform keeps its guarantees through crashes, outages and poison messages.

One private Kafka broker and one private PostgreSQL server (free ports, a temporary directory;
never the shared test servers, which these tests stop and restart) carry the five services as
processes, the mobility stream in its own worker process as deployed. Each scenario publishes a
fresh burst of the HR simulator's plan and injects its fault half-way: SIGKILL of the mobility
worker, a broker restart, PostgreSQL stopped for 10 s, 1 % poison messages. Afterwards every valid
mutation has exactly one dossier at its last revision with exactly the cases the contract asks
for, one open request per case in the requests service, no duplicated notification, and every
poison message sits in `hr.mutations.v1.dlq` with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiosmtpd.controller import Controller
from e2e_platform import (
    MOBILITY_WORKER,
    SERVICES,
    Mailbox,
    Platform,
    free_port,
    poll,
    start_platform,
)

from atlas_devstack.hrsim import PlannedEvent, generate_plan
from atlas_devstack.kafka import KafkaBroker
from atlas_devstack.postgres import PostgresServer
from atlas_events.auth import Role
from atlas_events.cloudevents import to_kafka
from atlas_events.consumer import DLQ_CONSUMER, DLQ_REASON
from atlas_events.kafka import make_producer
from atlas_events.schemas import hr

HR_TOPIC = "hr.mutations.v1"
BURST = 200  # mutations per scenario (plus the plan's amendments and cancellations)
SETTLE_TIMEOUT = 150.0  # seconds for a burst to reach every service after its fault
OPEN_REQUESTS = {"soumise", "en_instruction", "en_attente_usager"}
OPEN_CASES = {"ouvert", "en_cours"}
CASE_KINDS = ("logement", "scolarite", "demenagement")

Message = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


# ---- the private infrastructure --------------------------------------------------------------


@dataclass
class Stack:
    """The private broker, database server, SMTP mailbox and the platform on them."""

    broker: KafkaBroker
    postgres: PostgresServer
    platform: Platform
    mailbox: Mailbox
    communes: dict[str, str | None] = field(default_factory=dict)  # commune → atlas_id

    def sql(self, service: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(
            self.postgres.url(f"faults_{service}", driver=None), autocommit=True
        ) as conn:
            return list(conn.execute(query.encode(), params).fetchall())

    def space_for(self, commune: str) -> str | None:
        """The space covering `commune`, as the catalog resolves it (None: a_orienter)."""
        if commune not in self.communes:
            ops = self.platform.client("faults-ops", Role.OPS)
            response = ops.get(
                self.platform.url("catalog", "/v1/spaces/resolve"),
                params={"commune_insee": commune},
            )
            assert response.status_code in (200, 404), response.text
            found = response.json()["space"]["atlas_id"] if response.status_code == 200 else None
            self.communes[commune] = found
        return self.communes[commune]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Not pytest's tmp_path: as root, PostgreSQL runs as `postgres`, which must traverse the path.
    root = Path(tempfile.mkdtemp(prefix="atlas-faults-", dir="/tmp"))
    root.chmod(0o755)
    postgres = PostgresServer(root / "pg", port=free_port())
    broker = KafkaBroker(root / "kafka", port=free_port(), controller_port=free_port(), heap="512m")
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    try:
        postgres.ensure_installed()
        postgres.init()
        postgres.start()
        postgres.wait_ready()
        for service in SERVICES:
            postgres.create_database(f"faults_{service}")
        broker.start()
        broker.wait_ready(120)
        smtp.start()
        extra = {
            "notify": {
                "ATLAS_NOTIFY_SMTP_HOST": "127.0.0.1",
                "ATLAS_NOTIFY_SMTP_PORT": str(smtp.port),
                "ATLAS_NOTIFY_QUIET_HOURS_START": "00:00",
                "ATLAS_NOTIFY_QUIET_HOURS_END": "00:00",
            },
            # Several transactions per burst, so a fault lands between committed batches.
            "mobility": {"ATLAS_MOBILITY_STREAM_BATCH_SIZE": "50"},
        }
        with start_platform(
            root / "atlas",
            broker.bootstrap,
            lambda service: postgres.url(f"faults_{service}"),
            extra_env=extra,
            separate_mobility_worker=True,
        ) as platform:
            yield Stack(broker, postgres, platform, mailbox)
    finally:
        with contextlib.suppress(Exception):
            smtp.stop()
        broker.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


# ---- bursts ------------------------------------------------------------------------------------


@dataclass
class Burst:
    """One scenario's plan: the valid events in publication order and the poison messages."""

    tag: str
    events: list[PlannedEvent]
    poison: list[Message] = field(default_factory=list)

    def last(self) -> dict[str, PlannedEvent]:
        """The last revision published for each mutation."""
        latest: dict[str, PlannedEvent] = {}
        for event in self.events:
            latest[event.mutation_id] = event
        return latest


def make_burst(tag: str) -> Burst:
    """A fresh plan whose mutation ids carry `tag`, so scenarios never share a mutation."""
    events = generate_plan(BURST, seed=secrets.randbelow(10**9))
    for event in events:
        event.data["mutation_id"] = f"{tag}.{event.data['mutation_id']}"
    return Burst(tag, events)


def messages(events: Sequence[PlannedEvent]) -> list[Message]:
    out: list[Message] = []
    for event in events:
        message = to_kafka(event.cloud_event(), key=event.key)
        out.append((message.key, message.value, list(message.headers)))
    return out


def poison_messages(tag: str, count: int) -> list[Message]:
    """Unparseable bytes, and well-formed CloudEvents the contract's validation rejects."""
    made: list[Message] = []
    for index in range(count):
        key = f"poison-{tag}-{index}".encode()
        if index % 3 == 0:  # no CloudEvents headers, not JSON
            made.append((key, b"\x00\xff garbage " + key, []))
            continue
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", str(uuid.uuid4()).encode()),
            ("ce_source", b"urn:atlas:rh:faults"),
            ("ce_type", hr.MUTATION_ANNOUNCED.encode()),
            ("ce_time", b"2026-01-05T10:00:00Z"),
            ("content-type", b"application/json"),
        ]
        if index % 3 == 1:  # CloudEvents headers, a value that is not JSON
            made.append((key, b"{not json " + key, headers))
        else:  # valid JSON failing the contract: revision 0, a 3-digit agent_id, no destination
            data = {
                "mutation_id": f"POISON-{tag}-{index}",
                "revision": 0,
                "agent": {"agent_id": "123", "rank": "X", "population": "militaire"},
                "report_date": "2027-08-30",
                "household": {"partner": False, "children": []},
            }
            made.append((key, json.dumps(data).encode(), headers))
    return made


def publish(bootstrap: str, batch: Sequence[Message]) -> None:
    """Send messages in order with the idempotent producer, waiting for every acknowledgement."""

    async def send() -> None:
        producer = make_producer(bootstrap, client_id="faults-hr-simulator")
        await producer.start()
        try:
            acks = [
                await producer.send(HR_TOPIC, key=key, value=value, headers=headers)
                for key, value, headers in batch
            ]
            await asyncio.gather(*acks)
        finally:
            await producer.stop()

    asyncio.run(send())


# ---- what must hold after a burst --------------------------------------------------------------


def _age(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def expected_cases(stack: Stack, last: PlannedEvent) -> tuple[str | None, set[str]]:
    """(destination space, case kinds) CONTRACTS.md §1 asks for at the last revision."""
    if last.type == hr.MUTATION_CANCELLED:
        return None, set()
    data = last.data
    atlas_id = stack.space_for(data["destination"]["commune_insee"])
    if atlas_id is None:
        return None, set()  # a_orienter: the national cell orients it, no case yet
    needs = {"housing": True, "move": True, **(data.get("needs") or {})}
    report = date.fromisoformat(data["report_date"])
    kinds = set()
    if needs["housing"]:
        kinds.add("logement")
    children = data["household"]["children"]
    if any(2 <= _age(date.fromisoformat(c["birth_date"]), report) <= 17 for c in children):
        kinds.add("scolarite")
    if needs["move"]:
        kinds.add("demenagement")
    return atlas_id, kinds


def problems(stack: Stack, burst: Burst) -> list[str]:
    """Everything that does not (yet) match the guarantees for this burst; empty when settled."""
    like = f"{burst.tag}.%"
    dossiers = {
        row[0]: row
        for row in stack.sql(
            "mobility",
            "SELECT mutation_id, revision, destination_atlas_id, cancelled_at IS NOT NULL"
            " FROM mobility_dossiers WHERE mutation_id LIKE %s",
            like,
        )
    }
    cases: dict[str, list[tuple[Any, ...]]] = {}
    for row in stack.sql(
        "mobility",
        "SELECT mutation_id, kind, status, atlas_id, request_id FROM mobility_cases"
        " WHERE mutation_id LIKE %s",
        like,
    ):
        cases.setdefault(row[0], []).append(row)
    requests: dict[str, list[tuple[Any, ...]]] = {}
    for row in stack.sql(
        "requests",
        "SELECT mutation_id, case_kind, status, atlas_id, id FROM requests"
        " WHERE mutation_id LIKE %s",
        like,
    ):
        requests.setdefault(row[0], []).append(row)
    opened = Counter(
        row[0]
        for row in stack.sql(
            "notify",
            "SELECT reference FROM notify_notifications WHERE template_code = %s"
            " AND recipient_kind = 'agent' AND reference LIKE %s",
            "mobility.dossier_opened",
            like,
        )
    )
    found: list[str] = []
    last = burst.last()
    for mutation_id, event in last.items():
        dossier = dossiers.get(mutation_id)
        if dossier is None:
            found.append(f"{mutation_id}: no dossier")
            continue
        _, revision, destination, cancelled = dossier
        if revision != event.revision:
            found.append(f"{mutation_id}: dossier at revision {revision}, not {event.revision}")
            continue
        if cancelled != (event.type == hr.MUTATION_CANCELLED):
            found.append(f"{mutation_id}: cancelled={cancelled} after {event.type}")
        atlas_id, kinds = expected_cases(stack, event)
        if destination != atlas_id and event.type != hr.MUTATION_CANCELLED:
            found.append(f"{mutation_id}: destination {destination}, expected {atlas_id}")
        mine = cases.get(mutation_id, [])
        per_kind = Counter(row[1] for row in mine)
        if any(n > 1 for n in per_kind.values()):
            found.append(f"{mutation_id}: several cases of one kind {dict(per_kind)}")
        open_cases = {row[1]: row for row in mine if row[2] in OPEN_CASES}
        if set(open_cases) != kinds:
            found.append(
                f"{mutation_id}: open cases {sorted(open_cases)}, expected {sorted(kinds)}"
            )
        open_requests = [row for row in requests.get(mutation_id, []) if row[2] in OPEN_REQUESTS]
        by_kind = Counter(row[1] for row in open_requests)
        if by_kind != Counter(kinds):
            found.append(f"{mutation_id}: open requests {dict(by_kind)}, expected {sorted(kinds)}")
        for row in open_requests:
            case = open_cases.get(row[1])
            if row[3] != atlas_id:
                found.append(f"{mutation_id}: request {row[4]} at {row[3]}, expected {atlas_id}")
            elif case is not None and case[4] != row[4]:
                found.append(f"{mutation_id}: {row[1]} case names request {case[4]}, not {row[4]}")
        if opened[mutation_id] != 1:
            found.append(f"{mutation_id}: {opened[mutation_id]} dossier-opened notifications")
    extra = set(dossiers) - set(last)
    if extra:
        found.append(f"dossiers for mutations never published validly: {sorted(extra)[:5]}")
    return found


def duplicates(stack: Stack) -> list[str]:
    """Notifications sent twice: by the notify database's keys, and in the SMTP mailbox."""
    found = [
        f"notification {row} twice"
        for row in stack.sql(
            "notify",
            # One notification per source event is the database's key; the same message twice
            # under two source events (an event re-emitted with a new id) is a duplicate too.
            "SELECT template_code, recipient_kind, recipient_id, reference, params::text,"
            " count(*), array_agg(source_key) FROM notify_notifications"
            " GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1",
        )
    ]
    found += [
        f"delivery {row} twice"
        for row in stack.sql(
            "notify",
            "SELECT notification_id, channel, target, generation, count(*) FROM notify_deliveries"
            " GROUP BY 1, 2, 3, 4 HAVING count(*) > 1",
        )
    ]
    with stack.mailbox._lock:
        mails = Counter(
            (tuple(sorted(rcpts)), str(m["Subject"]), m.get_body().get_content())  # type: ignore[union-attr]
            for rcpts, m in stack.mailbox.messages
        )
    found += [
        f"e-mail to {key[0]} ({key[1]!r}) sent {n} times" for key, n in mails.items() if n > 1
    ]
    return found


def read_dlq(bootstrap: str) -> list[tuple[bytes | None, dict[str, bytes]]]:
    """Every record of the HR topic's dead-letter queue: key and headers."""

    async def read() -> list[tuple[bytes | None, dict[str, bytes]]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            topic = f"{HR_TOPIC}.dlq"
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            records: list[tuple[bytes | None, dict[str, bytes]]] = []
            deadline = time.monotonic() + 20
            while True:
                positions = {tp: await consumer.position(tp) for tp in partitions}
                if all(positions[tp] >= end for tp, end in ends.items()):
                    break
                assert time.monotonic() < deadline, "the DLQ could not be read to its end"
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += [(r.key, dict(r.headers)) for r in batch]
            return records
        finally:
            await consumer.stop()

    return asyncio.run(read())


def settle(stack: Stack, burst: Burst, what: str) -> float:
    """Poll until the burst meets every guarantee; return the seconds it took."""
    started = time.monotonic()
    last: list[str] = []

    def done() -> bool:
        nonlocal last
        last = problems(stack, burst)
        return not last

    deadline = started + SETTLE_TIMEOUT
    while not done():
        crashed = stack.platform.exited()
        if crashed:
            pytest.fail(f"{what}: processes exited {crashed}\n{stack.platform.logs(4000)}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what}: not settled after {SETTLE_TIMEOUT:.0f} s; {len(last)} problems, e.g.\n"
                + "\n".join(last[:15])
                + f"\n{stack.platform.logs(3000)}"
            )
        time.sleep(1.0)
    assert duplicates(stack) == []
    return time.monotonic() - started


def run_burst(stack: Stack, burst: Burst, fault: Callable[[], None], what: str) -> dict[str, float]:
    """Publish half the burst, inject `fault` once mobility is at work, publish the rest, settle."""
    batch = messages(burst.events)
    for position, poison in zip(
        range(
            len(batch) // (len(burst.poison) + 1), len(batch), len(batch) // (len(burst.poison) + 1)
        ),
        burst.poison,
        strict=False,
    ):
        batch.insert(position, poison)
    half = len(batch) // 2
    started = time.monotonic()
    publish(stack.broker.bootstrap, batch[:half])

    def working() -> int:
        (count,) = stack.sql(
            "mobility",
            "SELECT count(*) FROM mobility_dossiers WHERE mutation_id LIKE %s",
            f"{burst.tag}.%",
        )[0]
        return int(count)

    poll(f"{what}: mobility at work on the burst", working, timeout=60)
    fault_at = time.monotonic()
    fault()
    fault_took = time.monotonic() - fault_at
    publish(stack.broker.bootstrap, batch[half:])
    settled = settle(stack, burst, what)
    return {
        "fault_s": round(fault_took, 1),
        "settle_s": round(settled, 1),
        "total_s": round(time.monotonic() - started, 1),
    }


def assert_not_dead_lettered(stack: Stack, burst: Burst) -> None:
    """No valid event of the burst went to the DLQ (a lost mutation would hide there)."""
    ids = {event.mutation_id for event in burst.events}
    parked = [
        headers.get(DLQ_REASON, b"").decode()
        for key, headers in read_dlq(stack.broker.bootstrap)
        if headers.get("ce_subject", b"").decode() in ids
    ]
    assert parked == [], f"valid events of {burst.tag} dead-lettered: {parked[:5]}"


# ---- the scenarios -----------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_faults(stack: Stack) -> None:
    """The four faults in sequence on one private platform, a fresh burst each."""
    platform = stack.platform
    timings: dict[str, dict[str, float]] = {}

    # 1. SIGKILL of the mobility worker half-way through, then a restart.
    def kill_worker() -> None:
        platform.kill(MOBILITY_WORKER, signal.SIGKILL)
        platform.restart(MOBILITY_WORKER)

    burst = make_burst("K1")
    timings["sigkill_worker"] = run_burst(stack, burst, kill_worker, "SIGKILL mobility worker")
    assert_not_dead_lettered(stack, burst)

    # 2. The broker stops and starts again on the same port and data directory.
    def restart_broker() -> None:
        stack.broker.stop()
        stack.broker.start()
        stack.broker.wait_ready(120)

    burst = make_burst("K2")
    timings["broker_restart"] = run_burst(stack, burst, restart_broker, "broker restart")
    assert_not_dead_lettered(stack, burst)

    # 3. PostgreSQL away for 10 s (every service's database), the rest of the burst meanwhile.
    def postgres_outage() -> None:
        stack.postgres.stop()
        time.sleep(10)  # the outage itself
        stack.postgres.start()
        stack.postgres.wait_ready()

    burst = make_burst("K3")
    timings["postgres_outage"] = run_burst(stack, burst, postgres_outage, "PostgreSQL outage")
    assert_not_dead_lettered(stack, burst)

    # 4. 1 % poison messages mixed into the burst.
    burst = make_burst("K4")
    burst.poison = poison_messages("K4", max(3, len(burst.events) // 100))
    timings["poison"] = run_burst(stack, burst, lambda: None, "poison messages")
    assert_not_dead_lettered(stack, burst)
    keys = {key for key, _, _ in burst.poison}

    def parked() -> dict[bytes, list[dict[str, bytes]]] | None:
        found: dict[bytes, list[dict[str, bytes]]] = {}
        for key, headers in read_dlq(stack.broker.bootstrap):
            if key is not None and key in keys:
                found.setdefault(key, []).append(headers)
        return found if set(found) == keys else None

    dlq = poll("every poison message in the DLQ", parked, timeout=30)
    for key, copies in dlq.items():
        by_consumer = {h[DLQ_CONSUMER].decode(): h for h in copies}
        assert "mobility.ingest" in by_consumer, (key, list(by_consumer))
        for headers in copies:
            assert headers[DLQ_REASON].decode(), key
    assert all(platform.alive(name) for name in [*SERVICES, MOBILITY_WORKER]), platform.exited()
    print(f"fault timings: {timings}")  # read with `pytest -s`
