"""Alembic environment of the catalog service."""

from atlas_catalog.config import CatalogSettings
from atlas_catalog.db import metadata
from atlas_events.migrations import run_env

run_env(metadata, CatalogSettings().database_url)
