"""Operator endpoints: run the digest or the retention purge now, see the SMS circuit breakers."""

from typing import Annotated

from fastapi import APIRouter, Depends

from atlas_events.auth import AUTH_RESPONSES
from atlas_events.service import RuntimeDep
from atlas_notify.auth import Principal, Role, require_roles
from atlas_notify.deps import dispatcher_of

router = APIRouter(prefix="/v1/ops", tags=["operations"], responses=AUTH_RESPONSES)

Ops = Annotated[Principal, Depends(require_roles(Role.OPS))]


@router.post("/digests", summary="Send the staff digests now")
async def run_digests(runtime: RuntimeDep, _: Ops) -> dict[str, int]:
    """Every pending digest item goes out, one e-mail per staff member."""
    return {"emails": await dispatcher_of(runtime).send_digests()}


@router.post("/retention/purge", summary="Purge finished deliveries past their retention")
async def purge(runtime: RuntimeDep, _: Ops) -> dict[str, int]:
    """Content and addresses are erased; the rows stay so a source never notifies twice."""
    return {"purged": await dispatcher_of(runtime).purge()}


@router.get("/sms-providers", summary="SMS providers and their circuit breakers")
async def sms_providers(runtime: RuntimeDep, _: Ops) -> dict[str, str]:
    """closed, open or half_open per provider, in order of preference."""
    return dispatcher_of(runtime).sms.breaker_states()
