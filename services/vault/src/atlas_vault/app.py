"""The vault service's FastAPI app and worker wiring."""

from pathlib import Path

from fastapi import FastAPI

import atlas_vault
from atlas_events.service import ServiceDefinition, create_app
from atlas_vault.config import VaultSettings
from atlas_vault.db import event_tables, metadata

SERVICE = ServiceDefinition(
    name="vault",
    title="ATLAS vault: the digital safe",
    description=(atlas_vault.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
)


def create(settings: VaultSettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (database, broker)."""
    return create_app(SERVICE, settings or VaultSettings())
