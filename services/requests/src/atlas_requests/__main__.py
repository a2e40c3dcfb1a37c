"""`python -m atlas_requests`: the API (and, in local mode, its workers)."""

from atlas_events.service import serve
from atlas_requests.app import SERVICE
from atlas_requests.config import RequestsSettings

if __name__ == "__main__":
    serve(SERVICE, RequestsSettings())
