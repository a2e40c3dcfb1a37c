"""Consumer of mobility's commands: open and close a handler case's request, idempotently.

Commands come one per message (keyed by case) or as `case_commands` batches (keyed by the HR
partition their mutations come from). A batch is applied in order in its message's transaction,
with bulk statements for its runs of open_request; each command gets a span in its own
mutation's trace, linked to the span of the message that carried it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.consumer import BatchHandler, Delivery, delivery_span
from atlas_events.outbox import Outbox
from atlas_events.schemas.requests import (
    CLOSE_REQUEST,
    OPEN_REQUEST,
    CaseCommand,
    CaseCommands,
    CloseRequest,
    OpenRequest,
    OpenRequestItem,
)
from atlas_events.tracing import batch_links, consume_span
from atlas_requests.config import RequestsSettings
from atlas_requests.requests.service import RequestService

Handler = Callable[[AsyncSession, Delivery], Awaitable[None]]

# Messages applied in one transaction by the command consumer (ConsumerRunner.transaction_batch):
# single commands, or batches of up to MAX_BATCHED_COMMANDS (250) each.
COMMAND_TRANSACTION_BATCH = 20

tracer = trace.get_tracer(__name__)


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


def case_commands_handler(outbox: Outbox, settings: RequestsSettings, consumer: str) -> Handler:
    """The case_commands handler: a batch of commands, in order, in the message's transaction."""

    async def on_case_commands(session: AsyncSession, delivery: Delivery) -> None:
        assert isinstance(delivery.data, CaseCommands)
        commands = delivery.data.commands
        links = batch_links()  # the span of the message (opened by the consumer runner)

        def each(i: int) -> AbstractContextManager[trace.Span]:
            return command_span(commands[i], delivery.topic, consumer, links)

        await RequestService(session, outbox, settings).apply_case_commands(commands, each=each)

    return on_case_commands


def command_span(
    command: CaseCommand, topic: str, consumer: str, links: Sequence[trace.Link]
) -> AbstractContextManager[trace.Span]:
    """The consumer span of one batched command, in the trace of the mutation that issued it."""
    headers = [("traceparent", command.traceparent.encode())] if command.traceparent else []
    return consume_span(
        tracer,
        f"{topic} process",
        headers,
        {
            "messaging.consumer.group.name": consumer,
            "cloudevents.event_type": (
                OPEN_REQUEST if isinstance(command, OpenRequestItem) else CLOSE_REQUEST
            ),
        },
        links=links,
    )
