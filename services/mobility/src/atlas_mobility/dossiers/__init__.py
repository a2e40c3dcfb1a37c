"""Mobility dossiers: one per mutation, with its timeline."""
