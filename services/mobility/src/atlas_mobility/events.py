"""Collects the events a unit of work produces and writes them to the outbox in one statement.

A stream batch produces thousands of events: they are queued here while the batch is applied,
then handed to the shared `Outbox.add_many` (one multi-row INSERT, registry-validated, relays
woken when the caller's transaction commits). Each event keeps the trace context it was
emitted under (the span of the delivery that caused it), not the one current at the flush.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import context as otel_context
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.cloudevents import CloudEvent
from atlas_events.outbox import Outbox
from atlas_events.registry import TopicRegistry

SOURCE = "urn:atlas:mobility"


@dataclass
class EventSink:
    """Events of one unit of work, in order, waiting to be written to the outbox."""

    registry: TopicRegistry
    events: list[tuple[CloudEvent, str | bytes | None]] = field(default_factory=list)
    contexts: list[otel_context.Context] = field(default_factory=list)
    models: list[BaseModel | None] = field(default_factory=list)

    def emit(
        self, event_type: str, data: BaseModel, *, key: str, subject: str | None = None
    ) -> CloudEvent:
        """Queue a new mobility event keyed by `key`."""
        event = CloudEvent.create(event_type, SOURCE, data, subject=subject)
        self.events.append((event, key))
        self.contexts.append(otel_context.get_current())
        self.models.append(data)  # validated when built: the outbox need not validate it again
        return event

    def forward(self, event: CloudEvent, *, key: str) -> None:
        """Queue an event built elsewhere (an HR event posted over HTTP) unchanged."""
        self.events.append((event, key))
        self.contexts.append(otel_context.get_current())
        self.models.append(None)

    def mark(self) -> int:
        return len(self.events)

    def rollback_to(self, mark: int) -> None:
        del self.events[mark:]
        del self.contexts[mark:]
        del self.models[mark:]

    async def flush(self, session: AsyncSession, outbox: Outbox) -> int:
        """Insert every queued event into the outbox (in the caller's transaction)."""
        count = await outbox.add_many(
            session, self.events, contexts=self.contexts, models=self.models
        )
        self.events.clear()
        self.contexts.clear()
        self.models.clear()
        return count
