"""`python -m atlas_catalog`: the API (and, in local mode, its workers)."""

import uvicorn

from atlas_catalog.app import create
from atlas_catalog.config import CatalogSettings


def main() -> None:
    """Serve the app as `atlas_events.service.serve` does, with the catalog's token cache."""
    settings = CatalogSettings()
    uvicorn.run(
        create(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
