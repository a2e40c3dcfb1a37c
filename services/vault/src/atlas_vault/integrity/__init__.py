"""The scheduled integrity check and the quarantine scanner."""
