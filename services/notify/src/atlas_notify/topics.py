"""The topics notify reads and writes, optionally behind a prefix that isolates a test run."""

import dataclasses
from functools import cache

from atlas_events.registry import REGISTRY, TopicRegistry

EVENT_TOPICS = (
    "mobility.dossiers.v1",
    "requests.requests.v1",
    "vault.documents.v1",
    "catalog.spaces.v1",
    "hr.mutations.v1",
)
COMMAND_TOPIC = "notify.commands.v1"
DELIVERIES_TOPIC = "notify.deliveries.v1"


@cache
def registry_for(prefix: str) -> TopicRegistry:
    """The shared registry, with every topic name prefixed (the same registry when no prefix)."""
    if not prefix:
        return REGISTRY
    return TopicRegistry(
        dataclasses.replace(topic, name=prefix + topic.name) for topic in REGISTRY.topics()
    )
