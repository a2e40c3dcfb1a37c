"""The notify service's FastAPI app and worker wiring."""

from pathlib import Path

from fastapi import FastAPI

import atlas_notify
from atlas_events.service import ServiceDefinition, create_app
from atlas_notify.config import NotifySettings
from atlas_notify.db import event_tables, metadata

SERVICE = ServiceDefinition(
    name="notify",
    title="ATLAS notify: email, SMS and in-app notifications",
    description=(atlas_notify.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
)


def create(settings: NotifySettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (database, broker)."""
    return create_app(SERVICE, settings or NotifySettings())
