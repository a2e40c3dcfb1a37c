"""Catalog search over real HTTP: p50/p99 latency and throughput at fixed concurrency.

The catalog runs as `python -m atlas_catalog` (uvicorn, its own process) on PostgreSQL with the
reference data loaded; the baseline is a bare FastAPI endpoint served the same way, measured in
the same run by the same load generator (raw keep-alive HTTP/1.1, `HttpLoad`). Targets
(issue 3): p99 ≤ 25 ms, and at least half the baseline's throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import HttpLoad, Result, cpu_seconds, percentile

CONCURRENCY = 8
QUERIES: Sequence[str] = (
    "demenagement",
    "Déménagement",
    "demenagment",
    "crèche",
    "garde d'enfants",
    "logement militaire",
    "carte du combattant",
    "impots",
    "colonie de vacances",
    "psychologue",
    "soutien scolaire",
    "allocations familiales",
    "uniforme",
    "mutation outre-mer",
    "frais de déménagement",
    "crehce",
)
BARE_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()

@app.get("/bare")
async def bare() -> dict[str, str]:
    return {"status": "ok"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
"""
REPO = Path(__file__).resolve().parents[1]


def _fresh_paths(round_: int) -> list[str]:
    """16,000 searches, each a page not asked before (limits × offsets, new ones each round):
    the page cache misses, so every answer is filtered and rendered (the index keeps only its
    analysis of the words)."""
    return [
        str(httpx.URL("/v1/prestations", params={"q": q, "limit": limit, "offset": offset}))
        for offset in range(50 * round_, 50 * round_ + 50)
        for limit in range(5, 25)
        for q in QUERIES
    ]


@dataclass(frozen=True)
class Measure:
    """Latencies (seconds) of the requests made, the wall time and the server's CPU time."""

    latencies: list[float]
    seconds: float
    errors: int
    server_cpu: float

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def capacity(self) -> float:
        """Requests per second one saturated core of the server would answer."""
        return len(self.latencies) / self.server_cpu if self.server_cpu else float("nan")

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _postgres_url() -> Iterator[str]:
    """A fresh database: on ATLAS_TEST_POSTGRES_URL's server, else a local server of our own."""
    from atlas_devstack.paths import atlas_dir
    from atlas_devstack.postgres import PostgresEndpoint, PostgresServer

    name = f"atlas_bench_catalog_{secrets.token_hex(4)}"
    given = os.environ.get("ATLAS_TEST_POSTGRES_URL")
    server: PostgresServer | PostgresEndpoint
    started = False
    if given:
        server = PostgresEndpoint.from_url(given)
    else:
        server = PostgresServer(atlas_dir() / "bench" / "pg", port=15442)
        server.ensure_installed()
        server.init()
        if not server.is_running():
            server.start()
            started = True
        server.wait_ready()
    server.create_database(name)
    try:
        yield server.url(name)
    finally:
        with contextlib.suppress(Exception):
            server.drop_database(name)
        if started and isinstance(server, PostgresServer):
            server.stop()


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = process.stderr.read().decode()[-2000:] if process.stderr else ""
                raise RuntimeError(f"server exited with {process.returncode}: {err}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url, timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


async def _load(
    base_url: str,
    paths: Sequence[str],
    headers: dict[str, str],
    seconds: float,
    pid: int,
    warmup: Sequence[str] | None = None,
) -> Measure:
    """CONCURRENCY keep-alive connections looping over `paths` for `seconds` (200s only), after
    a second over `warmup` (default: `paths`) that is not measured."""
    url = httpx.URL(base_url)
    load = HttpLoad(url.host, url.port or 80, headers, concurrency=CONCURRENCY)
    await load.run(warmup or paths, 1.0)  # connections opened, code paths warm; not measured
    cpu = cpu_seconds(pid)
    begin = time.perf_counter()
    latencies = await load.run(paths, seconds)
    wall = time.perf_counter() - begin
    return Measure(latencies, wall, 0, cpu_seconds(pid) - cpu)


def _index_latencies(rounds: int) -> list[float]:
    """The search index alone, in process: what a query costs before HTTP and the service kit."""
    import json

    from atlas_catalog.config import DEFAULT_REFDATA_DIR
    from atlas_catalog.search.index import SearchIndex

    entries = json.loads((DEFAULT_REFDATA_DIR / "prestations.json").read_text(encoding="utf-8"))
    index = SearchIndex(
        [
            (
                e["code"],
                {
                    "title": e["title"],
                    "summary": e["summary"],
                    "keywords": " ; ".join(e["keywords"]),
                },
            )
            for e in entries
        ]
    )
    samples: list[float] = []
    for _ in range(rounds):
        for query in QUERIES:
            started = time.perf_counter()
            index.rank(index.analyse(query))  # analysis and ranking, no cache
            samples.append(time.perf_counter() - started)
    return samples


async def run(quick: bool) -> list[Result]:
    """Measure catalog search and the bare baseline, alternating them to share machine noise."""
    from atlas_events.auth import LocalSigningKey, Role

    seconds = 3.0 if quick else 10.0
    rounds = 1 if quick else 2
    with tempfile.TemporaryDirectory() as tmp, _postgres_url() as database_url:
        key_path = Path(tmp) / "jwt.pem"
        token = LocalSigningKey.load_or_create(key_path).issue("bench", [Role.AGENT])
        headers = {"Authorization": f"Bearer {token}"}
        catalog_port, bare_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "ATLAS_CATALOG_DATABASE_URL": database_url,
            "ATLAS_CATALOG_PORT": str(catalog_port),
            "ATLAS_CATALOG_RUN_WORKERS": "false",
            "ATLAS_CATALOG_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "ATLAS_CATALOG_AUTH_LOCAL_KEY_PATH": str(key_path),
            "ATLAS_CATALOG_LOG_LEVEL": "WARNING",
            "ATLAS_HOME": tmp,
        }
        catalog_cmd = [sys.executable, "-m", "atlas_catalog"]
        bare_cmd = [sys.executable, "-c", BARE_APP, str(bare_port)]
        with _process(catalog_cmd, env) as catalog, _process(bare_cmd, env) as bare:
            catalog_url = f"http://127.0.0.1:{catalog_port}"
            bare_url = f"http://127.0.0.1:{bare_port}"
            await _wait_ready(f"{catalog_url}/healthz", catalog)
            await _wait_ready(f"{bare_url}/bare", bare)
            search_paths = [
                str(httpx.URL("/v1/prestations", params={"q": q, "limit": 10})) for q in QUERIES
            ]

            searches: list[Measure] = []
            baselines: list[Measure] = []
            kits: list[Measure] = []
            fresh: list[Measure] = []
            for round_ in range(rounds):
                # Alternated, so both sides share the machine's noise.
                baselines.append(await _load(bare_url, ["/bare"], headers, seconds, bare.pid))
                searches.append(
                    await _load(catalog_url, search_paths, headers, seconds, catalog.pid)
                )
                # The service kit's own cost per request (middlewares, tracing, metrics).
                kits.append(await _load(catalog_url, ["/healthz"], headers, seconds, catalog.pid))
                fresh.append(
                    await _load(
                        catalog_url,
                        _fresh_paths(round_),
                        headers,
                        seconds,
                        catalog.pid,
                        warmup=search_paths,
                    )
                )
    search, baseline, kit = _merge(searches), _merge(baselines), _merge(kits)
    uncached = _merge(fresh)
    if search.errors or baseline.errors or kit.errors:
        raise RuntimeError(f"non-200 answers: search {search.errors}, bare {baseline.errors}")
    name = f"catalog search (c={CONCURRENCY})"
    base = "bare FastAPI"
    results = [
        Result(name, "throughput", search.throughput, "req/s", base, baseline.throughput,
               target="ratio ≥ 0.50"),
        Result(name, "p50", search.ms(50), "ms", base, baseline.ms(50), higher_is_better=False),
        Result(name, "p99", search.ms(99), "ms", base, baseline.ms(99), higher_is_better=False,
               target="≤ 25 ms"),
        Result(name, "server capacity (1 core)", search.capacity, "req/s", base,
               baseline.capacity),
        Result("catalog /healthz (kit only)", "server capacity (1 core)", kit.capacity, "req/s",
               base, baseline.capacity),
        Result(f"{name}, every page new", "throughput", uncached.throughput, "req/s", base,
               baseline.throughput),
        Result(f"{name}, every page new", "p99", uncached.ms(99), "ms", base, baseline.ms(99),
               higher_is_better=False),
    ]  # fmt: skip
    index = _index_latencies(20 if quick else 200)
    results.append(
        Result(
            "search index alone (in process, uncached)",
            "p99",
            percentile(index, 99) * 1000,
            "ms",
        )
    )
    ratio = search.throughput / baseline.throughput
    print(
        f"catalog search: {search.throughput:,.0f} req/s, p50 {search.ms(50):.2f} ms,"
        f" p99 {search.ms(99):.2f} ms ({len(search.latencies)} requests, c={CONCURRENCY})\n"
        f"bare FastAPI:   {baseline.throughput:,.0f} req/s, p50 {baseline.ms(50):.2f} ms,"
        f" p99 {baseline.ms(99):.2f} ms ({len(baseline.latencies)} requests)\n"
        f"every page new: {uncached.throughput:,.0f} req/s, p99 {uncached.ms(99):.2f} ms,"
        f" server CPU {1000 / uncached.capacity:.2f} ms per request\n"
        f"server CPU per request: search {1000 / search.capacity:.2f} ms,"
        f" catalog /healthz {1000 / kit.capacity:.2f} ms, bare {1000 / baseline.capacity:.2f} ms\n"
        f"throughput ratio {ratio:.2f} (target ≥ 0.50): {'met' if ratio >= 0.5 else 'missed'};"
        f" p99 {search.ms(99):.1f} ms (target ≤ 25 ms):"
        f" {'met' if search.ms(99) <= 25 else 'missed'}",
        flush=True,
    )
    return results


def _merge(measures: Sequence[Measure]) -> Measure:
    return Measure(
        [x for m in measures for x in m.latencies],
        sum(m.seconds for m in measures),
        sum(m.errors for m in measures),
        sum(m.server_cpu for m in measures),
    )
