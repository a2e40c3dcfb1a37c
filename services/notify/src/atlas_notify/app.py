"""The notify service's FastAPI app and worker wiring."""

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

import atlas_notify
from atlas_events.service import Runtime, ServiceDefinition, create_app
from atlas_events.workers import Worker
from atlas_notify import ops
from atlas_notify.config import NotifySettings
from atlas_notify.db import event_tables, metadata
from atlas_notify.deps import dispatcher_of, policy_of, settings_of
from atlas_notify.directory import endpoints as directory
from atlas_notify.directory.repository import seed_staff_directory
from atlas_notify.inbox import endpoints as inbox
from atlas_notify.notifications import endpoints as notifications
from atlas_notify.openapi import refine_openapi
from atlas_notify.preferences import endpoints as preferences
from atlas_notify.rules.consumers import build_consumers
from atlas_notify.templates import endpoints as templates
from atlas_notify.templates.service import seed_defaults


async def _seed(runtime: Runtime) -> None:
    """Default templates (version 1) and the staff directory from its configured file."""
    settings = settings_of(runtime)
    await seed_defaults(runtime.db, max_sms_segments=settings.sms_max_segments)
    await seed_staff_directory(runtime.db, settings.staff_directory_path)


def _workers(runtime: Runtime) -> Sequence[Worker]:
    workers: list[Worker] = [*build_consumers(runtime, lambda: policy_of(runtime))]
    if settings_of(runtime).dispatch_workers:
        workers.append(dispatcher_of(runtime))
    return workers


SERVICE = ServiceDefinition(
    name="notify",
    title="ATLAS notify: email, SMS and in-app notifications",
    description=(atlas_notify.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    routers=[
        notifications.router,
        inbox.router,
        templates.router,
        preferences.router,
        directory.router,
        ops.router,
    ],
    consumers=_workers,
    on_startup=[_seed],
    openapi=[refine_openapi],
)


def create(settings: NotifySettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (database, broker)."""
    return create_app(SERVICE, settings or NotifySettings())
