"""Requests: submission throughput and staff queue listing latency with 100,000 requests stored.

Baselines, measured in the same run on the same database: a bare INSERT of the same row through
asyncpg (submission), and the queue's raw SQL (page + count) through asyncpg (listing). The
service runs in-process without workers: what is measured is the API, its checks, the SLA
computation and the outbox row written with each request; Kafka is not on that path.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import Result, percentile

SPACES = [f"space-{i:02d}" for i in range(20)]
PRESTATIONS = ["LOG-001", "MOB-002", "FAM-006"]
STATUSES = (
    ["soumise"] * 5 + ["en_instruction"] * 3 + ["en_attente_usager", "terminee", "sans_suite"]
)
CHANNELS = ["guichet", "telephone", "en_ligne", "anticipation"]
BENCH_PG_PORT = 25472  # apart from the other benchmarks' servers


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh database on ATLAS_TEST_POSTGRES_URL's server, else on a local bench server."""
    from atlas_devstack.postgres import PostgresEndpoint, PostgresServer

    given = os.environ.get("ATLAS_TEST_POSTGRES_URL")
    server: PostgresServer | None = None
    if given:
        endpoint = PostgresEndpoint.from_url(given)
    else:
        from atlas_devstack.paths import atlas_dir

        server = PostgresServer(atlas_dir() / "bench" / "pg-requests", port=BENCH_PG_PORT)
        server.ensure_installed()
        server.init()
        started = not server.is_running()
        if started:
            server.start()
        server.wait_ready()
        endpoint = server.endpoint
    name = f"atlas_bench_requests_{secrets.token_hex(4)}"
    endpoint.create_database(name)
    try:
        yield endpoint.url(name)
    finally:
        endpoint.drop_database(name)
        if server is not None and started:
            server.stop()


def _raw_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def seed(dsn: str, n: int) -> None:
    """The catalog replica, then `n` requests bulk-loaded with COPY."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO replica_prestations (code, version, title, category, channels, essential,"
            " crisis_only, sla_days, withdrawn, updated_at)"
            ' VALUES ($1, 1, $1, \'logement\', \'["guichet","telephone","en_ligne"]\', true,'
            " false, 10, false, $2)",
            [(code, now) for code in PRESTATIONS],
        )
        await conn.executemany(
            "INSERT INTO replica_spaces (atlas_id, version, name, commune_insee, departement,"
            " overseas, crisis_mode, communes_covered, updated_at)"
            " VALUES ($1, 1, $1, '83137', '83', false, false, '[]', $2)",
            [(s, now) for s in SPACES],
        )
        columns = (
            "id", "atlas_id", "prestation_code", "prestation_unverified", "agent_id", "filed_by",
            "filed_by_role", "on_behalf", "channel", "title", "status", "sla_target_days",
            "sla_consumed_days", "sla_running_since", "sla_due_at", "sla_warn_at", "created_at",
            "submitted_at", "updated_at",
        )  # fmt: skip
        records = []
        for i in range(n):
            submitted = now - timedelta(minutes=5 * i)
            status = STATUSES[i % len(STATUSES)]
            running = status in ("soumise", "en_instruction")
            agent = f"20{i:08d}"
            records.append(
                (
                    str(uuid.uuid4()),
                    SPACES[i % len(SPACES)],
                    PRESTATIONS[i % 3],
                    False,
                    agent,
                    agent,
                    "agent",
                    False,
                    CHANNELS[i % 4],
                    "Demande",
                    status,
                    10.0,
                    0.0,
                    submitted if running else None,
                    submitted + timedelta(days=14) if running else None,
                    submitted + timedelta(days=11) if running else None,
                    submitted,
                    submitted,
                    submitted,
                )
            )
        await conn.copy_records_to_table("requests", records=records, columns=columns)
        await conn.execute("ANALYZE requests")
    finally:
        await conn.close()


async def timed(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Run `one(i)` for i in range(count) with `concurrency` workers; return operations/s."""
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def latencies(samples: int, call: Callable[[int], Awaitable[None]]) -> list[float]:
    out = []
    for i in range(samples):
        started = time.perf_counter()
        await call(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def run(quick: bool) -> list[Result]:
    from atlas_events.auth import LocalSigningKey, Role
    from atlas_requests.app import create
    from atlas_requests.config import RequestsSettings

    stored = 10_000 if quick else 100_000
    submissions = 300 if quick else 2_000
    samples = 100 if quick else 500
    concurrency = 16
    results: list[Result] = []
    async with postgres_database() as url:
        key_path = Path(tempfile.mkdtemp(prefix="bench-rq-")) / "jwt.pem"
        settings = RequestsSettings(
            database_url=url,
            auth_local_key_path=key_path,
            run_workers=False,
            kafka_bootstrap="127.0.0.1:1",
            log_level="WARNING",
        )
        app = create(settings)
        async with app.router.lifespan_context(app):
            load_started = time.perf_counter()
            await seed(_raw_dsn(url), stored)
            load_rate = stored / (time.perf_counter() - load_started)
            key = LocalSigningKey.load_or_create(key_path)
            staff = {
                "Authorization": "Bearer "
                + key.issue("staff-bench", [Role.STAFF], atlas_id=SPACES[0])
            }
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

                async def submit(i: int) -> None:
                    response = await http.post(
                        "/v1/requests",
                        headers=staff,
                        json={
                            "prestation_code": PRESTATIONS[i % 3],
                            "title": "Demande au guichet",
                            "agent_id": f"30{i:08d}",
                            "channel": "guichet",
                        },
                    )
                    assert response.status_code == 201, response.text

                await submit(0)  # warm-up: connections, caches
                api_rate = await timed(submissions, concurrency, submit)

                pool = await asyncpg.create_pool(_raw_dsn(url), min_size=10, max_size=10)
                assert pool is not None
                try:

                    async def bare_insert(i: int) -> None:
                        now = datetime.now(UTC)
                        await pool.execute(
                            "INSERT INTO requests (id, atlas_id, prestation_code,"
                            " prestation_unverified, agent_id, filed_by, filed_by_role, on_behalf,"
                            " channel, title, status, sla_target_days, sla_consumed_days,"
                            " created_at, submitted_at, updated_at) VALUES ($1, $2, 'LOG-001',"
                            " false, $3, 'staff-bench', 'staff', false, 'guichet', 'Demande',"
                            " 'soumise', 10, 0, $4, $4, $4)",
                            str(uuid.uuid4()), SPACES[0], f"40{i:08d}", now,
                        )  # fmt: skip

                    raw_rate = await timed(submissions, concurrency, bare_insert)

                    async def list_api(i: int) -> None:
                        params: dict[str, Any] = {
                            "status": ["soumise", "en_instruction"],
                            "page": 1 + i % 5,
                        }
                        response = await http.get("/v1/requests", headers=staff, params=params)
                        assert response.status_code == 200, response.text
                        assert len(response.json()["items"]) == 50

                    async def list_raw(i: int) -> None:
                        statuses = ["soumise", "en_instruction"]
                        async with pool.acquire() as conn:
                            rows = await conn.fetch(
                                "SELECT * FROM requests WHERE atlas_id = $1 AND status = ANY($2)"
                                " ORDER BY submitted_at DESC NULLS LAST, id LIMIT 50 OFFSET $3",
                                SPACES[0], statuses, 50 * (i % 5),
                            )  # fmt: skip
                            await conn.fetchval(
                                "SELECT count(*) FROM requests WHERE atlas_id = $1"
                                " AND status = ANY($2)",
                                SPACES[0], statuses,
                            )  # fmt: skip
                            assert len(rows) == 50

                    await list_api(0)
                    await list_raw(0)
                    api_ms = await latencies(samples, list_api)
                    raw_ms = await latencies(samples, list_raw)
                finally:
                    await pool.close()
            key_path.unlink(missing_ok=True)

    name = "requests"
    results.append(Result(name, f"bulk load {stored:,} requests (COPY)", load_rate, "rows/s"))
    results.append(
        Result(
            name,
            "submission throughput (POST /v1/requests, 16 concurrent)",
            api_rate,
            "req/s",
            baseline_name="bare asyncpg INSERT",
            baseline=raw_rate,
        )
    )
    for q in (50, 99):
        results.append(
            Result(
                name,
                f"queue listing p{q} ({stored:,} stored, page of 50 + total)",
                percentile(api_ms, q),
                "ms",
                baseline_name="raw SQL via asyncpg",
                baseline=percentile(raw_ms, q),
                higher_is_better=False,
            )
        )
    return results
