"""Errors the vault service answers on purpose (rendered by the shared handler)."""

from atlas_events.errors import AtlasError


class VaultError(AtlasError):
    """Base of the vault service's errors."""
