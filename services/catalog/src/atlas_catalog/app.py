"""The catalog service's FastAPI app and worker wiring."""

from pathlib import Path

from fastapi import FastAPI

import atlas_catalog
from atlas_catalog.config import CatalogSettings
from atlas_catalog.crisis.endpoints import router as crisis_router
from atlas_catalog.db import event_tables, metadata
from atlas_catalog.openapi import refine_openapi
from atlas_catalog.prestations.endpoints import router as prestations_router
from atlas_catalog.reference.startup import on_startup
from atlas_catalog.search.fastpath import CachedSearch
from atlas_catalog.spaces.endpoints import router as spaces_router
from atlas_events.service import ServiceDefinition, create_app

SERVICE = ServiceDefinition(
    name="catalog",
    title="ATLAS catalog: prestations, spaces and crisis mode",
    description=(atlas_catalog.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    routers=[prestations_router, spaces_router, crisis_router],
    on_startup=[on_startup],
    middleware=[CachedSearch],
    openapi=[refine_openapi],
)


def create(settings: CatalogSettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (database, broker)."""
    return create_app(SERVICE, settings or CatalogSettings())
