"""Prestations: the versioned catalog of support services, its admin and its search."""
