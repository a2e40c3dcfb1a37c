"""`python -m atlas_catalog.worker`: the outbox relay and consumers without the API."""

from atlas_catalog.app import SERVICE
from atlas_catalog.config import CatalogSettings
from atlas_events.service import run_worker

if __name__ == "__main__":
    run_worker(SERVICE, CatalogSettings(run_workers=True))
