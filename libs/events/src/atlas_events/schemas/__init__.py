"""Pydantic models of every event's data, one module per producing system."""
