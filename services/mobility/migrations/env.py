"""Alembic environment of the mobility service."""

from atlas_events.migrations import run_env
from atlas_mobility.config import MobilitySettings
from atlas_mobility.db import load_models, metadata

load_models()
run_env(metadata, MobilitySettings().database_url)
