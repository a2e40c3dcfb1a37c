"""Alembic environment of the notify service."""

import atlas_notify.app  # noqa: F401  (imports every table model into the metadata)
from atlas_events.migrations import run_env
from atlas_notify.config import NotifySettings
from atlas_notify.db import metadata

run_env(metadata, NotifySettings().database_url)
