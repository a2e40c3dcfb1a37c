"""`python -m atlas_catalog`: the API (and, in local mode, its workers)."""

from atlas_catalog.app import SERVICE
from atlas_catalog.config import CatalogSettings
from atlas_events.service import serve

if __name__ == "__main__":
    serve(SERVICE, CatalogSettings())
