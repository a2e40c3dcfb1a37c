"""What the domain services need from the running service: policy, topics, clock, reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path

from atlas_events.registry import TopicRegistry
from atlas_mobility.cases.handlers import Handler, handlers_for
from atlas_mobility.config import MobilitySettings
from atlas_mobility.events import EventSink
from atlas_mobility.policy.policy import MilestonePolicy, load_policy
from atlas_mobility.topics import Topics


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class MobilityContext:
    """The policy, topic names and clock shared by the decision, handlers and reminders."""

    policy: MilestonePolicy
    topics: Topics
    refdata_dir: Path | None
    clock: Callable[[], datetime] = field(default=_utcnow)

    @classmethod
    def from_settings(cls, settings: MobilitySettings) -> MobilityContext:
        return cls(
            policy=load_policy(settings.milestone_policy_path),
            topics=Topics(settings.topic_prefix),
            refdata_dir=settings.refdata_dir,
        )

    @cached_property
    def handlers(self) -> tuple[Handler, ...]:
        """The logement, scolarité and déménagement handlers, each with its policy."""
        return handlers_for(self.policy)

    @property
    def registry(self) -> TopicRegistry:
        return self.topics.registry

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return self.clock().date()

    def sink(self) -> EventSink:
        return EventSink(self.registry)
