"""`python -m atlas_vault`: the API (and, in local mode, its workers)."""

from atlas_events.service import serve
from atlas_vault.app import SERVICE
from atlas_vault.config import VaultSettings

if __name__ == "__main__":
    serve(SERVICE, VaultSettings())
