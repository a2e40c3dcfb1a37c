"""The dashboard's FastAPI app and worker wiring."""

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

import atlas_dashboard
from atlas_dashboard import endpoints
from atlas_dashboard.config import DashboardSettings
from atlas_dashboard.context import KafkaPoller, context_of
from atlas_dashboard.db import event_tables, metadata
from atlas_dashboard.openapi import refine_openapi
from atlas_events.service import Runtime, ServiceDefinition, create_app
from atlas_events.workers import Worker


def _workers(runtime: Runtime) -> Sequence[Worker]:
    context = context_of(runtime)
    return [context.reader, KafkaPoller(context)]


SERVICE = ServiceDefinition(
    name="dashboard",
    title="ATLAS dashboard: the ops teams' view of the platform",
    description=(atlas_dashboard.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    routers=[endpoints.router],
    consumers=_workers,
    openapi=[refine_openapi],
)


def create(settings: DashboardSettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (broker, topic prefix)."""
    return create_app(SERVICE, settings or DashboardSettings())
