"""The page (French, server-rendered) and the JSON overview with the same figures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from atlas_dashboard.context import ContextDep
from atlas_dashboard.overview import Overview
from atlas_events.auth import AUTH_RESPONSES, Credentials, Forbidden, Principal, Role, auth

router = APIRouter(tags=["dashboard"])

PARIS = ZoneInfo("Europe/Paris")
MONTHS = (
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
)
LABELS: dict[str, str] = {
    "logement": "Logement",
    "scolarite": "Scolarité",
    "demenagement": "Déménagement",
    "ouvert": "ouvert",
    "en_cours": "en cours",
    "clos": "clos",
    "annule": "annulé",
    "transfere": "transféré",
    "in_app": "Application",
    "email": "Courriel",
    "sms": "SMS",
    "created": "créée",
    "sending": "en envoi",
    "delivered": "remise",
    "temporary_failure": "échec temporaire",
    "permanent_failure": "échec définitif",
    "technical_failure": "échec technique",
    "skipped": "non envoyée",
    "read": "lue",
    "space": "espace",
    "national": "nationale",
}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %".replace(".", ",")


def _month(label: str) -> str:
    year, month = label.split("-")
    return f"{MONTHS[int(month) - 1]} {year}"


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S")


_templates.filters.update(
    percent=_percent, month=_month, when=_when, label=lambda v: LABELS.get(v, v)
)

SpaceQuery = Annotated[
    str | None,
    Query(
        alias="espace",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Show one ATLAS space only (managers and staff always see their own).",
    ),
]


async def _page_viewer(request: Request, credentials: Credentials) -> Principal | None:
    """Nobody in local mode (the page is bound to 127.0.0.1); else a bearer token's holder."""
    runtime: Any = request.app.state.runtime
    if runtime.settings.page_is_public:
        return None
    return await auth.principal(request, credentials)


def _scope(principal: Principal | None, requested: str | None) -> str | None:
    """The space shown: any for ops and admin (and the local page), their own for staff."""
    if principal is None or principal.has_role(Role.OPS, Role.ADMIN):
        return requested
    if principal.has_role(Role.MANAGER, Role.STAFF) and principal.atlas_id:
        if requested not in (None, principal.atlas_id):
            raise Forbidden(f"a space's staff may see only their own space ({principal.atlas_id})")
        return principal.atlas_id
    raise Forbidden("requires role ops, admin, or manager or staff of an ATLAS space")


@router.get(
    "/",
    response_class=HTMLResponse,
    summary="The ops dashboard page (French)",
    responses=AUTH_RESPONSES,
)
async def page(
    context: ContextDep,
    viewer: Annotated[Principal | None, Depends(_page_viewer)],
    espace: SpaceQuery = None,
) -> HTMLResponse:
    """Arrivals, backlog and SLA, notifications, lag and DLQs, crisis: refreshed every few s."""
    overview = context.overview(_scope(viewer, espace))
    html = _templates.get_template("overview.html").render(
        o=overview,
        refresh=context.settings.refresh_seconds,
        now=datetime.now(UTC),
    )
    return HTMLResponse(html)


@router.get(
    "/v1/overview",
    summary="Every figure of the dashboard as JSON (ops, admin; staff for their space)",
    responses=AUTH_RESPONSES,
)
async def overview(
    context: ContextDep,
    principal: Annotated[Principal, Depends(auth.principal)],
    espace: SpaceQuery = None,
) -> Overview:
    """The page's figures, for scripts, tests and users without Grafana."""
    return context.overview(_scope(principal, espace))
