"""A process running the workers prunes its event tables: published outbox rows do not pile up."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from catalog_factories import CatalogClient, live_settings, started

from atlas_events.testing import wait_until


async def test_published_outbox_rows_are_pruned_once_past_their_keep(
    database_url: Callable[[], str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = await live_settings(
        database_url(),
        tmp_path / "jwt.pem",
        kafka_bootstrap,
        f"t{uuid.uuid4().hex[:8]}.",
        outbox_keep_days=1 / 86_400,  # a published row is kept one second
        retention_interval_seconds=0.5,
    )
    async with started(config) as catalog:
        # Loading the reference data queued hundreds of snapshots; the relay publishes them...
        assert await catalog.outbox_count() > 100

        async def all_pruned(c: CatalogClient = catalog) -> bool:
            return await c.outbox_count() == 0

        # ...and the retention deletes each once it has been published for a second.
        await wait_until(all_pruned, timeout=60)
        assert await catalog.unpublished() == 0
