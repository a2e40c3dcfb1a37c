"""Alembic environment of the dashboard."""

from atlas_dashboard.config import DashboardSettings
from atlas_dashboard.db import metadata
from atlas_events.migrations import run_env

run_env(metadata, DashboardSettings().database_url)
