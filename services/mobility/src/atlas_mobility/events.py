"""Collects the events a unit of work produces and writes them to the outbox in one statement.

The shared `Outbox.add` inserts one row per call; a stream batch produces thousands of events, so
this writer builds the very same rows (registry-validated, CloudEvents binary encoding, trace
headers) and inserts them with one executemany. Relays are woken after the commit by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.cloudevents import CloudEvent, to_kafka
from atlas_events.outbox import EventTables, OutboxError
from atlas_events.registry import TopicRegistry
from atlas_events.tracing import inject_headers

SOURCE = "urn:atlas:mobility"


@dataclass
class EventSink:
    """Events of one unit of work, in order, waiting to be written to the outbox."""

    registry: TopicRegistry
    # (event, key, whether its data was built from the registry's own model for its type)
    events: list[tuple[CloudEvent, str, bool]] = field(default_factory=list)

    def emit(
        self, event_type: str, data: BaseModel, *, key: str, subject: str | None = None
    ) -> CloudEvent:
        """Queue a new mobility event keyed by `key`."""
        event = CloudEvent.create(event_type, SOURCE, data, subject=subject)
        trusted = type(data) is self.registry.event_type(event_type).data
        self.events.append((event, key, trusted))
        return event

    def forward(self, event: CloudEvent, *, key: str) -> None:
        """Queue an event built elsewhere (an HR event posted over HTTP) unchanged."""
        self.events.append((event, key, False))

    def mark(self) -> int:
        return len(self.events)

    def rollback_to(self, mark: int) -> None:
        del self.events[mark:]

    async def flush(self, session: AsyncSession, tables: EventTables) -> int:
        """Insert every queued event into the outbox (in the caller's transaction)."""
        if not self.events:
            return 0
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for event, key, trusted in self.events:
            topic = self.registry.topic_for_event(event.type).name
            if not trusted:  # a model of the type itself was validated when it was built
                try:
                    self.registry.validate(event.type, event.data)
                except Exception as exc:  # a bug of ours: refuse the whole unit of work
                    raise OutboxError(f"{event.type} does not match its schema: {exc}") from exc
            message = to_kafka(event, key)
            headers = inject_headers(message.headers)
            rows.append(
                {
                    "event_id": event.id,
                    "event_type": event.type,
                    "topic": topic,
                    "key": message.key,
                    "value": message.value,
                    "headers": [[k, v.decode()] for k, v in headers],
                    "created_at": now,
                }
            )
        await session.execute(insert(tables.outbox), rows)
        count = len(rows)
        self.events.clear()
        return count
