"""The service kit: one app shape for all five services (lifespan, health, metrics, workers)."""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import structlog
import uvloop
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atlas_events import migrations
from atlas_events.auth import CachingVerifier, CurrentPrincipal, TokenVerifier
from atlas_events.db import Database
from atlas_events.errors import install_error_handlers
from atlas_events.kafka import KafkaProbe, client_options
from atlas_events.logging import configure_logging
from atlas_events.openapi import install_openapi
from atlas_events.outbox import EventTables, Outbox, OutboxRelay
from atlas_events.registry import prefixed_registry
from atlas_events.retention import prune_event_tables
from atlas_events.settings import ServiceSettings
from atlas_events.tracing import setup_telemetry
from atlas_events.workers import PeriodicTask, Worker

log = structlog.get_logger(__name__)

HTTP_DURATION = Histogram(
    "atlas_http_request_duration_seconds",
    "HTTP request duration by route and status",
    ["service", "method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

WorkerFactory = Callable[["Runtime"], Sequence[Worker]]
StartupHook = Callable[["Runtime"], Awaitable[None]]
OpenAPIRefinement = Callable[[dict[str, Any], "Runtime"], None]
T = TypeVar("T")


@dataclass
class ServiceDefinition:
    """What a service contributes to the kit: its name, routes, tables, migrations and consumers."""

    name: str
    title: str
    description: str
    version: str
    metadata: MetaData
    tables: EventTables
    migrations_dir: Path
    routers: Sequence[APIRouter] = ()
    consumers: WorkerFactory = field(default=lambda _: ())
    """Consumers and the other workers (periodic tasks, dispatchers) run beside the API."""
    on_startup: Sequence[StartupHook] = ()
    middleware: Sequence[Callable[[ASGIApp], ASGIApp]] = ()
    """The service's own ASGI middleware, innermost first; they run inside the kit's tracing and
    request metrics, so what they answer themselves is still traced and measured."""
    openapi: Sequence[OpenAPIRefinement] = ()
    """Edits of the published OpenAPI document from what the service knows at run time (the
    catalog's vocabularies, say), applied once when /openapi.json is first built."""


class Runtime:
    """What a running service holds, reachable as `request.app.state.runtime`."""

    def __init__(self, service: ServiceDefinition, settings: ServiceSettings) -> None:
        self.service = service
        self.settings = settings
        self.db = Database(settings.database_url)
        self.registry = prefixed_registry(settings.topic_prefix)
        """The topics under the service's `topic_prefix` (the registry itself without one)."""
        self.outbox = Outbox(service.tables, registry=self.registry)
        self.verifier = TokenVerifier(settings.auth_settings())
        self.kafka_options = client_options(settings)
        """Security of every Kafka client of the service: pass it on as `kafka_options`."""
        self.kafka_probe = KafkaProbe(settings.kafka_bootstrap, kafka_options=self.kafka_options)
        self.relay: OutboxRelay | None = None
        self.pruner: PeriodicTask | None = None
        self.consumers: list[Worker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._extensions: dict[Callable[[Runtime], Any], Any] = {}

    def extension(self, factory: Callable[[Runtime], T]) -> T:
        """The service's own object built by `factory` (its context), made once per runtime."""
        try:
            found: T = self._extensions[factory]
        except KeyError:
            found = self._extensions[factory] = factory(self)
        return found

    async def start(self, *, workers: bool) -> None:
        """Migrate, then start the relay and consumers when this process runs the workers."""
        if self.settings.migrate_on_start:
            await asyncio.to_thread(
                migrations.upgrade, self.service.migrations_dir, self.settings.database_url
            )
        for hook in self.service.on_startup:
            await hook(self)
        if not workers:
            return
        retention = self.settings.retention_policy()
        retention.check(self.registry)
        self.relay = OutboxRelay(
            self.db,
            self.outbox,
            bootstrap=self.settings.kafka_bootstrap,
            client_id=f"atlas-{self.service.name}-relay",
            poll_seconds=self.settings.relay_poll_seconds,
            kafka_options=self.kafka_options,
        )
        self._tasks.append(_supervise(f"{self.service.name}-relay", self.relay.run))
        self.pruner = PeriodicTask(
            f"{self.service.name}-retention",
            self.settings.retention_interval_seconds,
            lambda: prune_event_tables(self.db, self.service.tables, retention),
        )
        self._tasks.append(_supervise(self.pruner.name, self.pruner.run))
        self.consumers = list(self.service.consumers(self))
        for consumer in self.consumers:
            self._tasks.append(_supervise(consumer.name, consumer.run))

    async def stop(self) -> None:
        """Stop workers gracefully (finish the message in hand, commit), then close clients."""
        for consumer in self.consumers:
            await consumer.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.pruner is not None:
            await self.pruner.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=15)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.kafka_probe.close()
        await self.db.dispose()


def _supervise(name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    """Run a worker loop; if it crashes (broker away at start-up, say), start it again later."""

    async def loop() -> None:
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started > 60:
                    delay = 0.5
                log.warning("worker_restart", worker=name, error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    return asyncio.create_task(loop(), name=name)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed once after the endpoint returns, else rolled back."""
    async with runtime_of(request).db.transaction() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


def _health_router(service: ServiceDefinition) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service.name}

    @router.get("/readyz", summary="The database and Kafka are reachable")
    async def readyz(runtime: RuntimeDep) -> JSONResponse:
        checks: dict[str, str] = {}
        for name, probe in (("database", runtime.db.ping), ("kafka", runtime.kafka_probe.check)):
            try:
                async with asyncio.timeout(3):
                    await probe()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {
                "status": "ready" if ready else "unavailable",
                "service": service.name,
                "checks": checks,
            },
            status_code=200 if ready else 503,
        )

    @router.get("/v1/whoami", summary="The caller as this service sees their token")
    async def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
        return {
            "sub": principal.sub,
            "roles": sorted(principal.roles),
            "atlas_id": principal.atlas_id,
            "service": service.name,
        }

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


# The collector's thresholds in a process that runs workers (consumers, relays, stream agents).
# A batch of thousands of events allocates millions of objects; with Python's defaults (a young
# pass every 700 allocations, an older one every 7,000) the collector took over a tenth of the
# mobility worker's CPU in a burst. An API-only process keeps the defaults: many small passes
# suit request latency better than fewer larger ones.
BATCH_GC_THRESHOLDS = (50_000, 20, 100)


def settle_heap(*, batch: bool = False) -> None:
    """Collect, then move every object alive now out of the cyclic collector's reach.

    What exists after start-up (modules, reference data, search indexes) lives as long as the
    process; left to the collector, each full collection walks all of it and stalls the event
    loop for tens of milliseconds, which is what an API's p99 shows. Call it again after
    replacing a large long-lived structure: it unfreezes first, so the structure replaced is
    collected (one full pass, paid when the data changes rather than on every request).
    `batch`: the process runs workers, so the collector runs less often (BATCH_GC_THRESHOLDS).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    if batch:
        gc.set_threshold(*BATCH_GC_THRESHOLDS)


class _RequestMetrics:
    """Request durations by route template, as a plain ASGI middleware (no per-request task)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_DURATION.labels(self.service, scope["method"], route, status).observe(
                time.perf_counter() - started
            )


_UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    """Probes and scrapes: no span (they would drown the traces that matter)."""
    return scope.get("path") in _UNTRACED_PATHS


def _refine(refine: OpenAPIRefinement, runtime: Runtime, document: dict[str, Any]) -> None:
    refine(document, runtime)


def create_app(service: ServiceDefinition, settings: ServiceSettings) -> FastAPI:
    """The FastAPI app of a service: lifespan, error handlers, health, metrics, its routers."""
    configure_logging(service.name, level=settings.log_level, json=settings.log_json)
    setup_telemetry(service.name, otlp_endpoint=settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime: Runtime = app.state.runtime
        await runtime.start(workers=settings.run_workers)
        settle_heap(batch=settings.run_workers)
        log.info("service_started", port=settings.port, workers=settings.run_workers)
        try:
            yield
        finally:
            await runtime.stop()
            log.info("service_stopped")

    app = FastAPI(
        title=service.title,
        description=service.description,
        version=service.version,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry support: one server span per request, continuing the
        # caller's traceparent; metrics are the kit's Prometheus histogram, logs are structlog.
        telemetry={
            "tracing": True,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "exclude": _untraced,
        },
    )
    runtime = Runtime(service, settings)
    app.state.runtime = runtime
    app.state.auth = CachingVerifier(runtime.verifier)
    install_error_handlers(app)
    install_openapi(app, [partial(_refine, refine, runtime) for refine in service.openapi])

    for middleware in service.middleware:
        app.add_middleware(middleware)
    app.add_middleware(_RequestMetrics, service=service.name)  # outermost of the user middleware

    app.include_router(_health_router(service))
    for router in service.routers:
        app.include_router(router)

    return app


def serve(service: ServiceDefinition, settings: ServiceSettings) -> None:
    """Run the API (and, in local mode, the workers) with uvicorn until SIGINT or SIGTERM."""
    import uvicorn

    uvicorn.run(
        create_app(service, settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


def serve_worker_metrics(port: int, host: str) -> bool:
    """Expose the worker's consumer, relay and task metrics, which no API process holds."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        # Already served by this process (a service that starts its own endpoint): keep going.
        log.warning("worker_metrics_not_served", port=port, error=repr(exc))
        return False
    log.info("worker_metrics_served", port=port)
    return True


def run_worker(service: ServiceDefinition, settings: ServiceSettings) -> None:
    """Run only the relay and the consumers (the worker Deployment), until SIGINT or SIGTERM."""
    configure_logging(service.name, level=settings.log_level, json=settings.log_json)
    setup_telemetry(service.name, otlp_endpoint=settings.otlp_endpoint)
    if settings.metrics_port:
        serve_worker_metrics(settings.metrics_port, settings.host)

    async def main() -> None:
        runtime = Runtime(service, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runtime.start(workers=True)
        settle_heap(batch=True)
        log.info("worker_started")
        await stop.wait()
        await runtime.stop()
        log.info("worker_stopped")

    # The same event loop uvicorn picks for the API processes (uvloop comes with uvicorn[standard]).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
