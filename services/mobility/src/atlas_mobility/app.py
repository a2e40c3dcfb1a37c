"""The mobility service's FastAPI app and worker wiring."""

from pathlib import Path

from fastapi import FastAPI

import atlas_mobility
from atlas_events.service import ServiceDefinition, create_app
from atlas_mobility.config import MobilitySettings
from atlas_mobility.db import event_tables, metadata

SERVICE = ServiceDefinition(
    name="mobility",
    title="ATLAS mobility: mutations anticipated at the destination space",
    description=(atlas_mobility.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
)


def create(settings: MobilitySettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (database, broker)."""
    return create_app(SERVICE, settings or MobilitySettings())
