"""Consumer of mobility's commands: open and close a handler case's request, idempotently."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.consumer import Delivery
from atlas_events.outbox import Outbox
from atlas_events.schemas.requests import CloseRequest, OpenRequest
from atlas_requests.config import RequestsSettings
from atlas_requests.requests.service import RequestService

Handler = Callable[[AsyncSession, Delivery], Awaitable[None]]


def command_handlers(outbox: Outbox, settings: RequestsSettings) -> tuple[Handler, Handler]:
    """The open_request and close_request handlers, bound to the service's outbox and settings."""

    async def on_open(session: AsyncSession, delivery: Delivery) -> None:
        assert isinstance(delivery.data, OpenRequest)
        await RequestService(session, outbox, settings).open_for_case(delivery.data)

    async def on_close(session: AsyncSession, delivery: Delivery) -> None:
        assert isinstance(delivery.data, CloseRequest)
        await RequestService(session, outbox, settings).close_for_case(delivery.data)

    return on_open, on_close
