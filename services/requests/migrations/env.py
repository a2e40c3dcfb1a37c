"""Alembic environment of the requests service."""

from atlas_events.migrations import run_env
from atlas_requests.config import RequestsSettings
from atlas_requests.db import load_models, metadata

load_models()
run_env(metadata, RequestsSettings().database_url)
