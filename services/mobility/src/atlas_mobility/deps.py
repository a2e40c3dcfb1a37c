"""Per-runtime objects of the mobility service, reachable from endpoints and workers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from atlas_events.service import Runtime, RuntimeDep
from atlas_mobility.config import MobilitySettings
from atlas_mobility.context import MobilityContext


def settings_of(runtime: Runtime) -> MobilitySettings:
    settings = runtime.settings
    assert isinstance(settings, MobilitySettings)
    return settings


def context_of(runtime: Runtime) -> MobilityContext:
    """The runtime's context (policy, topics, clock), made on first use."""
    return runtime.extension(_build_context)


def _build_context(runtime: Runtime) -> MobilityContext:
    return MobilityContext.from_settings(settings_of(runtime))


async def _context(runtime: RuntimeDep) -> MobilityContext:
    # async: FastAPI would run a plain `def` dependency in a worker thread.
    return context_of(runtime)


ContextDep = Annotated[MobilityContext, Depends(_context)]
