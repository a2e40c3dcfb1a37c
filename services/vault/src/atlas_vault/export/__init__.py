"""Portability: everything an owner deposited, in one signed, offline-verifiable archive."""
