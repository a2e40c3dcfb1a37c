"""`python -m atlas_mobility`: the API (and, in local mode, its workers)."""

from atlas_events.service import serve
from atlas_mobility.app import SERVICE
from atlas_mobility.config import MobilitySettings

if __name__ == "__main__":
    serve(SERVICE, MobilitySettings())
