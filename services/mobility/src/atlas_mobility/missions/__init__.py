"""Departures on and returns from mission (OPEX, mission intérieure, embarquement)."""
