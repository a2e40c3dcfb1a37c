"""Errors the catalog service answers on purpose (rendered by the shared handler)."""

from atlas_events.errors import AtlasError


class CatalogError(AtlasError):
    """Base of the catalog service's errors."""
