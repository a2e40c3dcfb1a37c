"""Request-scoped wiring: the service objects an endpoint needs, built from the runtime."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from atlas_events.service import RuntimeDep, SessionDep
from atlas_requests.config import RequestsSettings
from atlas_requests.requests.service import RequestService


def settings_of(runtime: RuntimeDep) -> RequestsSettings:
    settings = runtime.settings
    assert isinstance(settings, RequestsSettings)
    return settings


Settings = Annotated[RequestsSettings, Depends(settings_of)]


def request_service(session: SessionDep, runtime: RuntimeDep, settings: Settings) -> RequestService:
    return RequestService(session, runtime.outbox, settings)


Requests = Annotated[RequestService, Depends(request_service)]
