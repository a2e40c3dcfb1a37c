"""What the catalog keeps per running service: its settings, vocabulary and search view cache."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from atlas_catalog.config import CatalogSettings
from atlas_catalog.search.service import ViewCache
from atlas_catalog.vocabulary import Vocabulary
from atlas_events.service import Runtime, runtime_of


class CatalogContext:
    """The catalog's per-process state, built once per runtime."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.settings = (
            settings
            if isinstance(settings, CatalogSettings)
            else CatalogSettings.model_validate(settings.model_dump())
        )
        self.runtime = runtime
        self.vocabulary = Vocabulary.read(self.settings.refdata_dir)
        self.views = ViewCache(
            runtime.db, self.vocabulary, refresh_seconds=self.settings.search_refresh_seconds
        )


def context_of(runtime: Runtime) -> CatalogContext:
    """The runtime's catalog context, created on first use."""
    return runtime.extension(CatalogContext)


async def _context(request: Request) -> CatalogContext:
    # async: FastAPI runs a plain `def` dependency in a worker thread, which costs more than this.
    return context_of(runtime_of(request))


ContextDep = Annotated[CatalogContext, Depends(_context)]
