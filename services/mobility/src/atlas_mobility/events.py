"""Collects the events a unit of work produces and writes them to the outbox in one statement.

A stream batch produces thousands of events: they are queued here while the batch is applied,
then handed to the shared `Outbox.add_new` as one packed row (each event written straight from
its validated model to its Kafka record, published in order, relays woken when the caller's
transaction commits). Each event keeps the trace context it was emitted under (the span of the
delivery that caused it), not the one current at the flush.

Commands to the requests service are not sent one by one: they are queued per key (the HR
partition of the mutation that issued them, so a case's commands keep their order) and leave
as `apply_case_commands` batches at the flush, each command carrying its mutation's trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import context as otel_context
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.outbox import NewEvent, Outbox
from atlas_events.registry import TopicRegistry
from atlas_events.schemas import requests

SOURCE = "urn:atlas:mobility"


@dataclass
class EventSink:
    """Events of one unit of work, in order, waiting to be written to the outbox."""

    registry: TopicRegistry
    events: list[NewEvent] = field(default_factory=list)
    # The key the commands of the delivery being applied go under; None: each command's case.
    command_key: str | None = None
    commands: dict[str, list[requests.CaseCommand]] = field(default_factory=dict)

    def emit(
        self, event_type: str, data: BaseModel, *, key: str, subject: str | None = None
    ) -> None:
        """Queue a new mobility event keyed by `key`, under the current trace context."""
        self.events.append(NewEvent(event_type, data, key, subject, otel_context.get_current()))

    def command(self, item: requests.CaseCommand) -> None:
        """Queue a command for the requests service; it leaves batched at the flush."""
        self.commands.setdefault(self.command_key or item.case_id, []).append(item)

    def _emit_commands(self) -> None:
        size = requests.MAX_BATCHED_COMMANDS
        for key, queued in self.commands.items():
            for start in range(0, len(queued), size):
                batch = requests.CaseCommands(commands=queued[start : start + size])
                self.emit(requests.APPLY_CASE_COMMANDS, batch, key=key, subject=key)
        self.commands = {}

    async def flush(self, session: AsyncSession, outbox: Outbox) -> int:
        """Insert every queued event, then the command batches, into the outbox (in the
        caller's transaction)."""
        self._emit_commands()
        count = await outbox.add_new(session, SOURCE, self.events, packed=True)
        self.events.clear()
        return count
