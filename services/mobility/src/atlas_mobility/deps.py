"""Per-runtime objects of the mobility service, reachable from endpoints and workers."""

from __future__ import annotations

import weakref
from typing import Annotated

from fastapi import Depends

from atlas_events.service import Runtime, RuntimeDep
from atlas_mobility.config import MobilitySettings
from atlas_mobility.context import MobilityContext

_CONTEXTS: weakref.WeakKeyDictionary[Runtime, MobilityContext] = weakref.WeakKeyDictionary()


def settings_of(runtime: Runtime) -> MobilitySettings:
    settings = runtime.settings
    assert isinstance(settings, MobilitySettings)
    return settings


def context_of(runtime: Runtime) -> MobilityContext:
    """The runtime's context (policy, topics, clock), made on first use."""
    found = _CONTEXTS.get(runtime)
    if found is None:
        found = _CONTEXTS[runtime] = MobilityContext.from_settings(settings_of(runtime))
    return found


def _context(runtime: RuntimeDep) -> MobilityContext:
    return context_of(runtime)


ContextDep = Annotated[MobilityContext, Depends(_context)]
