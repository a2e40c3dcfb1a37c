"""`python -m atlas_mobility.worker`: the outbox relay and consumers without the API."""

from atlas_events.service import run_worker
from atlas_mobility.app import SERVICE
from atlas_mobility.config import MobilitySettings

if __name__ == "__main__":
    run_worker(SERVICE, MobilitySettings(run_workers=True))
