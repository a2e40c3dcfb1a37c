"""Alembic environment of the vault service."""

from atlas_events.migrations import run_env
from atlas_vault.config import VaultSettings
from atlas_vault.db import metadata

run_env(metadata, VaultSettings().database_url)
