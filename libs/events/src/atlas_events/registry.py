"""The one list of Kafka topics, keys and event types; contracts and manifests derive from it."""

from __future__ import annotations

import builtins
import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel

from atlas_events.schemas import catalog, hr, missions, mobility, notify, requests, vault

DLQ_SUFFIX = ".dlq"
DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000
# A dead-lettered message is the original one plus the DLQ headers (the reason, where from): its
# DLQ takes twice the 1 MiB a topic takes by default, so whatever a topic accepted fits there too.
DLQ_MAX_MESSAGE_BYTES = 2 * 1024 * 1024
SCHEMA_URI_PREFIX = "urn:atlas:schema:"

# What Kafka accepts as a topic name (the platform's naming conventions are tested, not enforced).
_KAFKA_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
# A CloudEvents type is a non-empty string; ours also go in file names, so no spaces or slashes.
_EVENT_TYPE = re.compile(r"[A-Za-z0-9._:-]+")


class UnknownEventType(KeyError):
    """No topic declares this CloudEvents type."""


class UnknownTopic(KeyError):
    """No topic of that name is declared."""


class RegistryError(ValueError):
    """The declared topics break a registry invariant."""


@dataclass(frozen=True)
class EventType:
    """A CloudEvents type and the pydantic model of its data."""

    type: str
    data: builtins.type[BaseModel]
    description: str

    @property
    def dataschema(self) -> str:
        """URI of the data's JSON Schema, the `$id` of contracts/schemas/<type>.json."""
        return SCHEMA_URI_PREFIX + self.type


@dataclass(frozen=True)
class Topic:
    """A Kafka topic: what keys it, how it is kept, which event types it carries, who uses it."""

    name: str
    key: str
    partitions: int
    cleanup_policy: Literal["delete", "compact"]
    events: tuple[EventType, ...]
    description: str
    owner: str
    public: bool
    retention_ms: int | None = None
    consumers: tuple[str, ...] = ()
    other_producers: tuple[str, ...] = ()

    @property
    def dlq(self) -> str:
        """Name of the dead-letter topic for messages consumers could not handle."""
        return f"{self.name}{DLQ_SUFFIX}"

    @property
    def producers(self) -> tuple[str, ...]:
        """Every system that writes to the topic, the owner first."""
        return (self.owner, *self.other_producers)

    def kafka_config(self) -> dict[str, str]:
        """Topic-level Kafka configuration."""
        config: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


class TopicRegistry:
    """Lookups over a checked set of topics: by name, by event type, and the Kafka topic list."""

    def __init__(self, topics: Iterable[Topic]) -> None:
        self._topics: dict[str, Topic] = {}
        self._events: dict[str, tuple[EventType, Topic]] = {}
        for topic in topics:
            self._add(topic)
        for topic in self._topics.values():
            if topic.dlq in self._topics:
                raise RegistryError(
                    f"topic {topic.dlq} clashes with the dead-letter topic of {topic.name}"
                )

    def _add(self, topic: Topic) -> None:
        if topic.name in self._topics:
            raise RegistryError(f"topic {topic.name} is declared twice")
        if not _KAFKA_TOPIC_NAME.fullmatch(topic.dlq):
            raise RegistryError(f"topic name {topic.name!r} is not a valid Kafka topic name")
        if topic.partitions < 1:
            raise RegistryError(f"topic {topic.name} needs at least one partition")
        if topic.cleanup_policy not in ("delete", "compact"):
            raise RegistryError(
                f"topic {topic.name} has unknown cleanup policy {topic.cleanup_policy!r}"
            )
        if topic.retention_ms is not None and topic.retention_ms < 1:
            raise RegistryError(f"topic {topic.name} has a non-positive retention")
        if not topic.events:
            raise RegistryError(f"topic {topic.name} declares no event type")
        for event in topic.events:
            if not _EVENT_TYPE.fullmatch(event.type):
                raise RegistryError(
                    f"event type {event.type!r} may hold only letters, digits and . _ : -"
                )
            if event.type in self._events:
                other = self._events[event.type][1].name
                raise RegistryError(
                    f"event type {event.type} is declared in {other} and {topic.name}"
                )
            self._events[event.type] = (event, topic)
        self._topics[topic.name] = topic

    def topics(self) -> list[Topic]:
        """Every topic, in declaration order."""
        return list(self._topics.values())

    def topic(self, name: str) -> Topic:
        """The topic of that name, or UnknownTopic."""
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopic(name) from None

    def event_types(self) -> list[EventType]:
        """Every event type, in declaration order."""
        return [event for event, _ in self._events.values()]

    def event_type(self, ce_type: str) -> EventType:
        """The declaration of a CloudEvents type, or UnknownEventType."""
        try:
            return self._events[ce_type][0]
        except KeyError:
            raise UnknownEventType(ce_type) from None

    def topic_for_event(self, ce_type: str) -> Topic:
        """The topic that carries a CloudEvents type, or UnknownEventType."""
        try:
            return self._events[ce_type][1]
        except KeyError:
            raise UnknownEventType(ce_type) from None

    def validate(self, ce_type: str, data: Any) -> BaseModel:
        """Validate event data against its type's model (UnknownEventType or ValidationError)."""
        return self.event_type(ce_type).data.model_validate(data)

    def kafka_topics(self) -> list[tuple[str, int, dict[str, str]]]:
        """(name, partitions, configs) of every topic to create; each DLQ mirrors its partitions."""
        result: list[tuple[str, int, dict[str, str]]] = []
        for topic in self._topics.values():
            result.append((topic.name, topic.partitions, topic.kafka_config()))
            result.append((topic.dlq, topic.partitions, dlq_kafka_config()))
        return result


def dlq_kafka_config() -> dict[str, str]:
    """Topic-level Kafka configuration of every dead-letter topic."""
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(DLQ_RETENTION_MS),
        "max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES),
    }


def _handler_topic(
    kind: str, opened: str, updated: str, closed: str, data: type[BaseModel]
) -> Topic:
    """A mobility handler topic: the facts of one kind of case, keyed by mutation.

    Mobility applies its handlers' work in the HR stage's own transaction and publishes each
    work item here for integrators and the ops dashboard; it does not read them back.
    """
    return Topic(
        name=f"mobility.handlers.{kind}.v1",
        key="mutation_id",
        partitions=3,
        cleanup_policy="delete",
        events=(
            EventType(opened, data, f"A {kind} case opened: full snapshot of the case."),
            EventType(updated, data, f"A {kind} case changed: full snapshot replacing the last."),
            EventType(closed, mobility.HandlerCaseClosed, f"A {kind} case closed."),
        ),
        description=(
            f"Facts of the {kind} handler: its cases opening, changing and closing (published"
            " by mobility's HR stage, which does not read them back)."
        ),
        owner="mobility",
        public=True,
        consumers=(),
    )


TOPICS: tuple[Topic, ...] = (
    Topic(
        name="hr.mutations.v1",
        key="agent_id",
        partitions=6,
        cleanup_policy="delete",
        retention_ms=30 * 24 * 3600 * 1000,
        events=(
            EventType(hr.MUTATION_ANNOUNCED, hr.MutationAnnounced, "A mutation is announced."),
            EventType(hr.MUTATION_AMENDED, hr.MutationAmended, "A mutation changed."),
            EventType(hr.MUTATION_CANCELLED, hr.MutationCancelled, "A mutation is cancelled."),
        ),
        description="Mutations (transfers) published by the HR systems, per CONTRACTS.md §1.",
        owner="hr",
        public=False,
        consumers=("mobility",),
    ),
    Topic(
        name="hr.missions.v1",
        key="agent_id",
        partitions=3,
        cleanup_policy="delete",
        retention_ms=30 * 24 * 3600 * 1000,
        events=(
            EventType(
                missions.MISSION_ANNOUNCED, missions.MissionAnnounced, "A mission is announced."
            ),
            EventType(missions.MISSION_AMENDED, missions.MissionAmended, "A mission changed."),
            EventType(
                missions.MISSION_CANCELLED, missions.MissionCancelled, "A mission is cancelled."
            ),
            EventType(missions.MISSION_RETURNED, missions.MissionReturned, "The agent is back."),
        ),
        description="Missions (OPEX, mission intérieure, embarquement) published by HR systems.",
        owner="hr",
        public=False,
        consumers=("mobility",),
    ),
    Topic(
        name="catalog.prestations.v1",
        key="code",
        partitions=1,
        cleanup_policy="compact",
        events=(
            EventType(
                catalog.PRESTATION_SNAPSHOT,
                catalog.PrestationSnapshot,
                "Current state of a prestation.",
            ),
            EventType(
                catalog.PRESTATION_WITHDRAWN,
                catalog.PrestationWithdrawn,
                "A prestation is withdrawn.",
            ),
        ),
        description="The prestation catalog, latest record per prestation code (compacted).",
        owner="catalog",
        public=True,
        consumers=("requests",),
    ),
    Topic(
        name="catalog.spaces.v1",
        key="atlas_id",
        partitions=1,
        cleanup_policy="compact",
        events=(
            EventType(catalog.SPACE_SNAPSHOT, catalog.SpaceSnapshot, "Current state of a space."),
            EventType(
                catalog.SPACE_CRISIS_MODE_CHANGED,
                catalog.SpaceCrisisModeChanged,
                "A space's crisis mode was switched (full snapshot).",
            ),
        ),
        description="ATLAS spaces and the communes they cover, latest snapshot per space.",
        owner="catalog",
        public=True,
        consumers=("mobility", "requests"),
    ),
    Topic(
        name="requests.requests.v1",
        key="request_id",
        partitions=6,
        cleanup_policy="delete",
        events=(
            EventType(
                requests.REQUEST_SUBMITTED, requests.RequestSubmitted, "A request was submitted."
            ),
            EventType(
                requests.REQUEST_STATUS_CHANGED,
                requests.RequestStatusChanged,
                "A request changed status.",
            ),
            EventType(
                requests.REQUEST_ASSIGNED, requests.RequestAssigned, "A request was assigned."
            ),
            EventType(
                requests.REQUEST_SLA_WARNING,
                requests.RequestSlaWarning,
                "A request nears its SLA deadline.",
            ),
            EventType(
                requests.REQUEST_SLA_BREACHED,
                requests.RequestSlaBreached,
                "A request passed its SLA deadline.",
            ),
            EventType(
                requests.REQUEST_MESSAGE_POSTED,
                requests.RequestMessagePosted,
                "A message was posted on a request.",
            ),
        ),
        description="Lifecycle of support requests in the spaces' queues.",
        owner="requests",
        public=True,
        consumers=("mobility", "notify"),
    ),
    Topic(
        name="requests.commands.v1",
        key="case_id",
        partitions=3,
        cleanup_policy="delete",
        events=(
            EventType(requests.OPEN_REQUEST, requests.OpenRequest, "Open a request for a case."),
            EventType(requests.CLOSE_REQUEST, requests.CloseRequest, "Close a case's request."),
            EventType(
                requests.APPLY_CASE_COMMANDS,
                requests.CaseCommands,
                "Open and close case requests, in order, as one batch.",
            ),
        ),
        description=(
            "Commands to the requests service: one command keyed by the handler case that sends"
            " it, or a batch of them keyed by the HR partition its mutations come from (a case's"
            " commands always travel under one key, so they stay in order)."
        ),
        owner="mobility",
        public=False,
        consumers=("requests",),
    ),
    Topic(
        name="mobility.dossiers.v1",
        key="mutation_id",
        partitions=6,
        cleanup_policy="delete",
        events=(
            EventType(mobility.DOSSIER_OPENED, mobility.DossierOpened, "A dossier opened."),
            EventType(mobility.DOSSIER_AMENDED, mobility.DossierAmended, "A dossier changed."),
            EventType(
                mobility.DOSSIER_CANCELLED, mobility.DossierCancelled, "A dossier was cancelled."
            ),
            EventType(mobility.DOSSIER_CLOSED, mobility.DossierClosed, "A dossier closed."),
            EventType(
                mobility.DEPARTURE_ANNOUNCED,
                mobility.DepartureAnnounced,
                "An agent's departure is announced to the origin space.",
            ),
            EventType(mobility.MILESTONE_DUE, mobility.MilestoneDue, "A case milestone is due."),
        ),
        description="Lifecycle of mobility dossiers, one per mutation.",
        owner="mobility",
        public=True,
        consumers=("notify",),
    ),
    Topic(
        name="mobility.missions.v1",
        key="mission_id",
        partitions=3,
        cleanup_policy="delete",
        events=(
            EventType(
                missions.MISSION_OPENED,
                missions.MissionOpened,
                "A mission's departure case opened at the home space.",
            ),
            EventType(
                missions.MISSION_AMENDED_FACT, missions.MissionAmendedFact, "A mission changed."
            ),
            EventType(
                missions.MISSION_CANCELLED_FACT,
                missions.MissionCancelledFact,
                "A mission was cancelled.",
            ),
            EventType(
                missions.MISSION_RETURN_OPENED,
                missions.MissionReturnOpened,
                "A mission's return case opened.",
            ),
            EventType(
                missions.MISSION_RETURN_OVERDUE,
                missions.MissionReturnOverdue,
                "A mission's planned return passed with no returned event.",
            ),
        ),
        description="Departures on and returns from mission, one mission per key.",
        owner="mobility",
        public=True,
        consumers=("notify",),
    ),
    _handler_topic(
        "logement",
        mobility.LOGEMENT_CASE_OPENED,
        mobility.LOGEMENT_CASE_UPDATED,
        mobility.LOGEMENT_CASE_CLOSED,
        mobility.LogementCase,
    ),
    _handler_topic(
        "scolarite",
        mobility.SCOLARITE_CASE_OPENED,
        mobility.SCOLARITE_CASE_UPDATED,
        mobility.SCOLARITE_CASE_CLOSED,
        mobility.ScolariteCase,
    ),
    _handler_topic(
        "demenagement",
        mobility.DEMENAGEMENT_CASE_OPENED,
        mobility.DEMENAGEMENT_CASE_UPDATED,
        mobility.DEMENAGEMENT_CASE_CLOSED,
        mobility.DemenagementCase,
    ),
    Topic(
        name="notify.commands.v1",
        key="notification_id",
        partitions=3,
        cleanup_policy="delete",
        events=(
            EventType(notify.SEND_NOTIFICATION, notify.SendNotification, "Send a notification."),
        ),
        description="Commands to the notify service.",
        owner="mobility",
        public=False,
        consumers=("notify",),
        other_producers=("requests", "vault"),
    ),
    Topic(
        name="notify.deliveries.v1",
        key="notification_id",
        partitions=3,
        cleanup_policy="delete",
        events=(
            EventType(
                notify.DELIVERY_STATUS_CHANGED,
                notify.DeliveryStatusChanged,
                "A notification's delivery changed status.",
            ),
        ),
        description="Delivery status of notifications, per channel.",
        owner="notify",
        public=True,
    ),
    Topic(
        name="vault.documents.v1",
        key="document_id",
        partitions=3,
        cleanup_policy="delete",
        events=(
            EventType(
                vault.DOCUMENT_DEPOSITED, vault.DocumentDeposited, "A document was deposited."
            ),
            EventType(vault.DOCUMENT_SCANNED, vault.DocumentScanned, "A document was scanned."),
            EventType(
                vault.DOCUMENT_DESTROYED, vault.DocumentDestroyed, "A document was destroyed."
            ),
            EventType(vault.GRANT_CREATED, vault.GrantCreated, "Access to a document was granted."),
            EventType(vault.GRANT_REVOKED, vault.GrantRevoked, "A grant was revoked."),
            EventType(
                vault.DOCUMENT_INTEGRITY_FAILED,
                vault.DocumentIntegrityFailed,
                "An integrity check failed.",
            ),
        ),
        description="Metadata of the vault's documents and grants; never their content.",
        owner="vault",
        public=False,
        consumers=("notify",),
    ),
)

REGISTRY = TopicRegistry(TOPICS)


@cache
def prefixed_registry(prefix: str) -> TopicRegistry:
    """The shared registry with every topic name behind `prefix` (isolates a test or benchmark
    run on a shared broker); the registry itself without one."""
    if not prefix:
        return REGISTRY
    return TopicRegistry(
        dataclasses.replace(topic, name=prefix + topic.name) for topic in REGISTRY.topics()
    )
