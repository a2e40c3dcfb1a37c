"""ATLAS mobility: mutations anticipated at the destination space."""
