"""Support requests: lifecycle, channels, assignment, SLA clock and messages."""
