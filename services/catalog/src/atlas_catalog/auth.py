"""Authentication and scoping dependencies of the catalog service (the shared JWT verifier)."""

from atlas_events.auth import CurrentPrincipal, Principal, Role, require_roles, staff_of

__all__ = ["CurrentPrincipal", "Principal", "Role", "require_roles", "staff_of"]
