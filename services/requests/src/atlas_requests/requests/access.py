"""Who may see and move a request: agents their own, staff their space, ops everything."""

from __future__ import annotations

from atlas_events.auth import STAFF_ROLES, Principal, Role
from atlas_requests.errors import NotAllowed, RequestNotFound
from atlas_requests.requests.models import Request
from atlas_requests.requests.state import Actor


def is_staff_of(principal: Principal, atlas_id: str) -> bool:
    """Ops, or staff/managers whose token names this space."""
    if principal.is_ops:
        return True
    return principal.has_role(*STAFF_ROLES) and principal.atlas_id == atlas_id


def is_requester(principal: Principal, request: Request) -> bool:
    """The agent the request is for, or who filed it for them (a proxy holder)."""
    return principal.has_role(Role.AGENT) and principal.sub in (request.agent_id, request.filed_by)


def can_see(principal: Principal, request: Request) -> bool:
    return is_staff_of(principal, request.atlas_id) or is_requester(principal, request)


def ensure_visible(principal: Principal, request: Request) -> None:
    """404 for a request the caller may not see: its existence is not theirs to know."""
    if not can_see(principal, request):
        raise RequestNotFound(f"request {request.id} not found")


def actor_of(principal: Principal, request: Request) -> Actor:
    """The role the caller acts in on this request (staff first), or 404."""
    if is_staff_of(principal, request.atlas_id):
        return Actor.STAFF
    if is_requester(principal, request):
        return Actor.REQUESTER
    raise RequestNotFound(f"request {request.id} not found")


def ensure_staff(principal: Principal, atlas_id: str, what: str) -> None:
    if not is_staff_of(principal, atlas_id):
        raise NotAllowed(f"only staff of ATLAS space {atlas_id} may {what}")


def ensure_manager(principal: Principal, atlas_id: str) -> None:
    """Managers of the space, or ops: KPIs and the staff roster."""
    if principal.is_ops:
        return
    if principal.has_role(Role.MANAGER) and principal.atlas_id == atlas_id:
        return
    raise NotAllowed(f"requires role manager of ATLAS space {atlas_id} (or ops)")
