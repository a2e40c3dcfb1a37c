"""`python -m atlas_requests.worker`: the outbox relay and consumers without the API."""

from atlas_events.service import run_worker
from atlas_requests.app import SERVICE
from atlas_requests.config import RequestsSettings

if __name__ == "__main__":
    run_worker(SERVICE, RequestsSettings(run_workers=True))
