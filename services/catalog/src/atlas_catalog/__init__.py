"""ATLAS catalog: prestations, spaces and crisis mode."""
