"""The local replica of the catalog: prestations and spaces (with their crisis mode)."""
