"""Consumer of mobility's commands: open and close a handler case's request, idempotently.

Commands come one per message (keyed by case) or as `apply_case_commands` batches (keyed by the HR
partition their mutations come from). A batch is applied in order in its message's transaction,
with bulk statements for its runs of open_request; each command gets a span in its own
mutation's trace, linked to the span of the message that carried it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token

from opentelemetry import context as otel_context
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
from atlas_events.tracing import batch_links, extract_context
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
    """The apply_case_commands handler: a batch of commands, in order, in one transaction."""

    async def on_case_commands(session: AsyncSession, delivery: Delivery) -> None:
        assert isinstance(delivery.data, CaseCommands)
        commands = delivery.data.commands
        # Linked to the span of the message (opened by the consumer runner).
        spans = MutationSpans(commands, delivery.topic, consumer, batch_links())
        try:
            await RequestService(session, outbox, settings).apply_case_commands(
                commands, each=spans
            )
        finally:
            spans.close()

    return on_case_commands


class MutationSpans:
    """The consumer spans of a batch's commands: one per mutation, in the mutation's trace.

    A mutation's commands are consecutive in its batch and carry the same `traceparent`: they
    share one span (a span per command cost a sixth of the worker's CPU in the burst), made
    current at its mutation's first command and until the next mutation's or `close` (entering
    and leaving it around each command cost a tenth).
    """

    def __init__(
        self,
        commands: Sequence[CaseCommand],
        topic: str,
        consumer: str,
        links: Sequence[trace.Link],
    ) -> None:
        self.commands = commands
        self.name = f"{topic} process"
        self.consumer = consumer
        self.links = links
        self._span: trace.Span | None = None
        self._traceparent: str | None = None
        self._token: Token[otel_context.Context] | None = None

    def __call__(self, i: int) -> AbstractContextManager[object]:
        """Make current the span command `i` is applied under (a context to enter around it)."""
        command = self.commands[i]
        if (
            self._span is None
            or command.traceparent is None
            or (command.traceparent != self._traceparent)
        ):
            self.close()
            carrier = [("traceparent", command.traceparent.encode())] if command.traceparent else []
            self._span = tracer.start_span(
                self.name,
                context=extract_context(carrier),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.consumer.group.name": self.consumer,
                    "cloudevents.event_type": (
                        OPEN_REQUEST if isinstance(command, OpenRequestItem) else CLOSE_REQUEST
                    ),
                },
                links=self.links,
            )
            self._traceparent = command.traceparent
            self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return nullcontext()

    def close(self) -> None:
        """End the span of the last mutation (no longer current)."""
        if self._span is not None:
            assert self._token is not None
            otel_context.detach(self._token)
            self._span.end()
            self._span = None
