"""The start-up hook: load the reference data, then warm the search view."""

from __future__ import annotations

import structlog

from atlas_catalog.context import context_of
from atlas_catalog.reference.loader import LoadReport, ReferenceLoader, report_fields
from atlas_events.service import Runtime

log = structlog.get_logger(__name__)


async def load_reference_data(runtime: Runtime) -> LoadReport | None:
    """Apply the reference data directory (when enabled); idempotent, publishes what changed."""
    context = context_of(runtime)
    if not context.settings.load_refdata:
        return None
    async with runtime.db.transaction() as session:
        loader = ReferenceLoader(
            session,
            runtime.outbox,
            context.vocabulary,
            context.views,
            context.settings.refdata_dir,
        )
        report = await loader.load()
    log.info("refdata_loaded", **report_fields(report))
    return report


async def on_startup(runtime: Runtime) -> None:
    """ServiceDefinition hook: load the reference data and build the search index once."""
    await load_reference_data(runtime)
    await context_of(runtime).views.current()
