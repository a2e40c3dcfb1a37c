"""The mobility service's FastAPI app and worker wiring."""

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

import atlas_mobility
from atlas_events.service import Runtime, ServiceDefinition, create_app
from atlas_events.workers import Worker
from atlas_mobility.config import MobilitySettings
from atlas_mobility.db import event_tables, metadata
from atlas_mobility.deps import context_of, settings_of
from atlas_mobility.dossiers import endpoints as dossiers
from atlas_mobility.ingestion import endpoints as ingestion
from atlas_mobility.missions import endpoints as missions
from atlas_mobility.openapi import refine_openapi
from atlas_mobility.spaces.service import seed_from_refdata
from atlas_mobility.stream.workers import StreamWorker, mission_return_check, reminder_scheduler


async def _seed_spaces(runtime: Runtime) -> None:
    """Resolve destinations from the reference files until the catalog topic has been read."""
    await seed_from_refdata(runtime.db, settings_of(runtime).refdata_dir)


def _workers(runtime: Runtime) -> Sequence[Worker]:
    settings = settings_of(runtime)
    context = context_of(runtime)
    return [
        StreamWorker(runtime, settings, context),
        reminder_scheduler(runtime, settings, context),
        mission_return_check(runtime, settings, context),
    ]


SERVICE = ServiceDefinition(
    name="mobility",
    title="ATLAS mobility: mutations anticipated at the destination space",
    description=(atlas_mobility.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    routers=[ingestion.router, dossiers.router, missions.router],
    consumers=_workers,
    on_startup=[_seed_spaces],
    openapi=[refine_openapi],
)


def create(settings: MobilitySettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (database, broker)."""
    return create_app(SERVICE, settings or MobilitySettings())
