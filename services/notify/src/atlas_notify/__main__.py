"""`python -m atlas_notify`: the API (and, in local mode, its workers)."""

from atlas_events.service import serve
from atlas_notify.app import SERVICE
from atlas_notify.config import NotifySettings

if __name__ == "__main__":
    serve(SERVICE, NotifySettings())
