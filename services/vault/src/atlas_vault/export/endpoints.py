"""The export endpoint: the decree's portability in one request."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from atlas_events.auth import AUTH_RESPONSES, CurrentPrincipal, Role
from atlas_events.errors import error_responses
from atlas_events.service import SessionDep
from atlas_vault.context import VaultDep
from atlas_vault.errors import AccessDenied
from atlas_vault.export.service import build_export

router = APIRouter(prefix="/v1", tags=["export"])


@router.get(
    "/export",
    summary="Export all of one's documents, receipts and journal in one ZIP",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The signed archive."},
        **AUTH_RESPONSES,
        **error_responses(AccessDenied),
    },
)
async def export_vault(
    session: SessionDep, vault: VaultDep, principal: CurrentPrincipal
) -> Response:
    """Originals, a signed manifest with their hashes, the journal extract and the receipts;
    check it offline with `python -m atlas_vault.verify <file.zip>`."""
    if not principal.has_role(Role.AGENT):
        raise AccessDenied("only an owner exports their own documents")
    archive, name = await build_export(session, vault, principal)
    return Response(
        archive,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
