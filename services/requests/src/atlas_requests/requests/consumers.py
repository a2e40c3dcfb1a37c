"""Consumer of mobility's commands: open and close a handler case's request, idempotently."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.consumer import BatchHandler, Delivery, delivery_span
from atlas_events.outbox import Outbox
from atlas_events.schemas.requests import CloseRequest, OpenRequest
from atlas_requests.config import RequestsSettings
from atlas_requests.requests.service import RequestService

Handler = Callable[[AsyncSession, Delivery], Awaitable[None]]

# Commands applied in one transaction by the command consumer (ConsumerRunner.transaction_batch).
COMMAND_TRANSACTION_BATCH = 200


def command_handlers(outbox: Outbox, settings: RequestsSettings) -> tuple[Handler, Handler]:
    """The open_request and close_request handlers, bound to the service's outbox and settings."""

    async def on_open(session: AsyncSession, delivery: Delivery) -> None:
        assert isinstance(delivery.data, OpenRequest)
        await RequestService(session, outbox, settings).open_for_case(delivery.data)

    async def on_close(session: AsyncSession, delivery: Delivery) -> None:
        assert isinstance(delivery.data, CloseRequest)
        await RequestService(session, outbox, settings).close_for_case(delivery.data)

    return on_open, on_close


def open_batch_handler(outbox: Outbox, settings: RequestsSettings, consumer: str) -> BatchHandler:
    """open_request for a run of commands in one go (the consumer's transaction_batch mode)."""

    async def on_open_many(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        commands = []
        for delivery in deliveries:
            assert isinstance(delivery.data, OpenRequest)
            commands.append(delivery.data)
        await RequestService(session, outbox, settings).open_many_for_cases(
            commands, each=lambda i: delivery_span(deliveries[i], consumer)
        )

    return on_open_many
