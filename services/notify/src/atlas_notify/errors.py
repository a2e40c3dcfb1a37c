"""Errors the notify service answers on purpose (rendered by the shared handler)."""

from atlas_events.errors import AtlasError


class NotifyError(AtlasError):
    """Base of the notify service's errors."""
