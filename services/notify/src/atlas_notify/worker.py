"""`python -m atlas_notify.worker`: the outbox relay and consumers without the API."""

from atlas_events.service import run_worker
from atlas_notify.app import SERVICE
from atlas_notify.config import NotifySettings

if __name__ == "__main__":
    run_worker(SERVICE, NotifySettings(run_workers=True))
