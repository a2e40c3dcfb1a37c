"""The requests service's FastAPI app and worker wiring."""

from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI

import atlas_requests
from atlas_events.consumer import ConsumerRunner
from atlas_events.registry import REGISTRY, TopicRegistry
from atlas_events.schemas import catalog as catalog_events
from atlas_events.schemas import requests as request_events
from atlas_events.service import Runtime, ServiceDefinition, create_app
from atlas_events.workers import Worker
from atlas_requests.board.endpoints import router as board_router
from atlas_requests.catalog import consumers as catalog_consumers
from atlas_requests.config import RequestsSettings
from atlas_requests.db import event_tables, metadata
from atlas_requests.metrics import QueueMetrics
from atlas_requests.openapi import refine_openapi
from atlas_requests.queue.endpoints import router as queue_router
from atlas_requests.requests.consumers import (
    COMMAND_TRANSACTION_BATCH,
    case_commands_handler,
    command_handlers,
    open_batch_handler,
)
from atlas_requests.requests.endpoints import router as requests_router
from atlas_requests.sla.monitor import SlaMonitor


def consumer_registry(settings: RequestsSettings) -> TopicRegistry:
    """The registry with the consumed topics under the names configured (tests use their own)."""
    renamed = {
        "catalog.prestations.v1": settings.prestations_topic,
        "catalog.spaces.v1": settings.spaces_topic,
        "requests.commands.v1": settings.commands_topic,
    }
    return TopicRegistry(replace(t, name=renamed.get(t.name, t.name)) for t in REGISTRY.topics())


def consumers(runtime: Runtime) -> list[Worker]:
    """The catalog replica, the mobility commands, the SLA monitor and the queue gauges."""
    settings = runtime.settings
    assert isinstance(settings, RequestsSettings)
    registry = consumer_registry(settings)
    suffix = settings.consumer_group_suffix
    on_open, on_close = command_handlers(runtime.outbox, settings)
    common = {
        "db": runtime.db,
        "tables": event_tables,
        "bootstrap": settings.kafka_bootstrap,
        "kafka_options": runtime.kafka_options,
        "registry": registry,
    }
    return [
        ConsumerRunner(
            name=f"requests.catalog{suffix}",
            topics=[settings.prestations_topic, settings.spaces_topic],
            handlers={
                catalog_events.PRESTATION_SNAPSHOT: catalog_consumers.on_prestation_snapshot,
                catalog_events.PRESTATION_WITHDRAWN: catalog_consumers.on_prestation_withdrawn,
                catalog_events.SPACE_SNAPSHOT: catalog_consumers.on_space_snapshot,
                catalog_events.SPACE_CRISIS_MODE_CHANGED: catalog_consumers.on_space_snapshot,
            },
            **common,  # type: ignore[arg-type]
        ),
        ConsumerRunner(
            name=f"requests.commands{suffix}",
            topics=[settings.commands_topic],
            handlers={
                request_events.OPEN_REQUEST: on_open,
                request_events.CLOSE_REQUEST: on_close,
                request_events.APPLY_CASE_COMMANDS: case_commands_handler(
                    runtime.outbox, settings, f"requests.commands{suffix}"
                ),
            },
            # An annual plan arrives as tens of thousands of commands: one transaction per poll
            # chunk instead of one per message (a failed chunk is replayed message by message).
            transaction_batch=COMMAND_TRANSACTION_BATCH,
            batch_handlers={
                request_events.OPEN_REQUEST: open_batch_handler(
                    runtime.outbox, settings, f"requests.commands{suffix}"
                )
            },
            **common,  # type: ignore[arg-type]
        ),
        SlaMonitor(db=runtime.db, outbox=runtime.outbox, settings=settings),
        QueueMetrics(runtime.db, settings.sla_check_seconds),
    ]


SERVICE = ServiceDefinition(
    name="requests",
    title="ATLAS requests: support requests, queues, SLA and matching",
    description=(atlas_requests.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    routers=[requests_router, queue_router, board_router],
    consumers=consumers,
    openapi=[refine_openapi],
)


def create(settings: RequestsSettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (database, broker)."""
    return create_app(SERVICE, settings or RequestsSettings())
