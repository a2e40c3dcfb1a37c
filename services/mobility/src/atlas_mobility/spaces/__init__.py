"""The local replica of the catalog's ATLAS spaces, used to resolve destinations."""
