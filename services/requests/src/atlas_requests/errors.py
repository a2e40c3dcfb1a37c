"""Errors the requests service answers on purpose (rendered by the shared handler)."""

from atlas_events.errors import AtlasError


class RequestsError(AtlasError):
    """Base of the requests service's errors."""
