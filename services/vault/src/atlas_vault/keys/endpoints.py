"""Admin endpoints of the KEK lifecycle and the operators' integrity check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from atlas_events.auth import AUTH_RESPONSES, CurrentPrincipal, Principal, Role
from atlas_events.errors import error_responses
from atlas_events.schemas._base import INT32_MAX
from atlas_events.service import RuntimeDep
from atlas_vault.context import VaultDep
from atlas_vault.errors import AccessDenied, KeyRetirementRefused, KmsUnavailable
from atlas_vault.integrity.service import IntegrityReport, run_integrity_check
from atlas_vault.journal.service import Actor
from atlas_vault.keys import service
from atlas_vault.keys.service import KeyStatus, RewrapReport

router = APIRouter(prefix="/v1/admin", tags=["administration"])
_ERRORS = {**AUTH_RESPONSES, **error_responses(AccessDenied, KmsUnavailable)}


def _admin(principal: Principal) -> Actor:
    if not principal.has_role(Role.ADMIN):
        raise AccessDenied("requires role admin")
    return Actor.of(principal)


@router.get("/keys", response_model=KeyStatus, summary="KEK status", responses=_ERRORS)
async def key_status(
    runtime: RuntimeDep, vault: VaultDep, principal: CurrentPrincipal
) -> KeyStatus:
    """Current KEK version and how many data keys still use older ones."""
    _admin(principal)
    return await service.status(runtime.db, vault)


@router.post("/keys/rotate", response_model=KeyStatus, summary="Rotate the KEK", responses=_ERRORS)
async def rotate_key(
    runtime: RuntimeDep, vault: VaultDep, principal: CurrentPrincipal
) -> KeyStatus:
    """Add a KEK version; deposits use it from now on."""
    return await service.rotate(runtime.db, vault, _admin(principal))


@router.post(
    "/keys/rewrap",
    response_model=RewrapReport,
    summary="Rewrap every data key under the current KEK version",
    responses=_ERRORS,
)
async def rewrap_keys(
    runtime: RuntimeDep, vault: VaultDep, principal: CurrentPrincipal
) -> RewrapReport:
    """Touches only wrapped keys, never the encrypted documents."""
    return await service.rewrap(runtime.db, vault, _admin(principal))


@router.post(
    "/keys/retire",
    response_model=KeyStatus,
    summary="Retire KEK versions older than `below`",
    responses={**_ERRORS, **error_responses(KeyRetirementRefused)},
)
async def retire_keys(
    runtime: RuntimeDep,
    vault: VaultDep,
    principal: CurrentPrincipal,
    below: Annotated[int, Query(ge=1, le=INT32_MAX)],
) -> KeyStatus:
    """Refused while any document is still wrapped under such a version."""
    return await service.retire(runtime.db, vault, _admin(principal), below)


@router.post(
    "/integrity-check",
    response_model=IntegrityReport,
    summary="Run the integrity check now (it also runs on a schedule)",
    responses={**AUTH_RESPONSES, **error_responses(AccessDenied)},
)
async def integrity_check(
    runtime: RuntimeDep, vault: VaultDep, principal: CurrentPrincipal
) -> IntegrityReport:
    """Ops and admins: re-verify every stored blob and the journal chain; failures are events."""
    if not (principal.is_ops or principal.has_role(Role.ADMIN)):
        raise AccessDenied("the integrity check is for ops and admins")
    return await run_integrity_check(runtime.db, vault, runtime.outbox, Actor.of(principal))
