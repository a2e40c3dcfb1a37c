"""`python -m atlas_vault.worker`: the outbox relay and consumers without the API."""

from atlas_events.service import run_worker
from atlas_vault.app import SERVICE
from atlas_vault.config import VaultSettings

if __name__ == "__main__":
    run_worker(SERVICE, VaultSettings(run_workers=True))
