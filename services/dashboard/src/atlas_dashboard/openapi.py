"""The dashboard's OpenAPI says whether its HTML page needs a token, as the settings decide.

In local mode the page is served without a token (`page_public`); the route still declares the
bearer scheme, for production, where an authenticating proxy adds it. The document drops the
requirement when the page is public, so it says what this process does.
"""

from __future__ import annotations

from typing import Any

from atlas_dashboard.config import DashboardSettings
from atlas_events.service import Runtime

PAGE = "/"


def refine_openapi(document: dict[str, Any], runtime: Runtime) -> None:
    """Remove the page's security requirement and its 401/403 when it is public."""
    settings = runtime.settings
    if isinstance(settings, DashboardSettings) and settings.page_is_public:
        page = document["paths"][PAGE]["get"]
        page.pop("security", None)
        for status in ("401", "403"):
            page.get("responses", {}).pop(status, None)
