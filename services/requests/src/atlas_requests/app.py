"""The requests service's FastAPI app and worker wiring."""

from pathlib import Path

from fastapi import FastAPI

import atlas_requests
from atlas_events.service import ServiceDefinition, create_app
from atlas_requests.config import RequestsSettings
from atlas_requests.db import event_tables, metadata

SERVICE = ServiceDefinition(
    name="requests",
    title="ATLAS requests: support requests, queues, SLA and matching",
    description=(atlas_requests.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
)


def create(settings: RequestsSettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (database, broker)."""
    return create_app(SERVICE, settings or RequestsSettings())
