"""Errors the mobility service answers on purpose (rendered by the shared handler)."""

from atlas_events.errors import AtlasError


class MobilityError(AtlasError):
    """Base of the mobility service's errors."""
