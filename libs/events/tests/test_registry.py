"""Topic registry: lookups, invariants, Kafka topic list, and the HR contract of CONTRACTS.md §1."""

import copy
import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from atlas_events.registry import (
    REGISTRY,
    EventType,
    RegistryError,
    Topic,
    TopicRegistry,
    UnknownEventType,
    UnknownTopic,
)
from atlas_events.schemas import catalog, hr

# Copied from CONTRACTS.md §1, so the models are checked against the document, not themselves.
HR_EXAMPLE: dict[str, Any] = {
    "mutation_id": "TERRE-2027-004211",
    "revision": 1,
    "agent": {
        "agent_id": "2019123456",
        "rank": "Sergent",
        "given_name": "Camille",
        "family_name": "Martin",
        "email": "camille.martin@example.fr",
        "phone": "+33612345678",
        "population": "militaire",
    },
    "origin": {"unit": "3e RIMa", "commune_insee": "56260"},
    "destination": {"unit": "Base navale de Toulon", "commune_insee": "83137"},
    "report_date": "2027-08-30",
    "household": {
        "partner": True,
        "children": [{"child_ref": "c1", "birth_date": "2016-04-12"}],
    },
    "needs": {"housing": True, "move": True},
}

EXPECTED_TOPICS = {
    "hr.mutations.v1": "agent_id",
    "hr.missions.v1": "agent_id",
    "mobility.missions.v1": "mission_id",
    "catalog.prestations.v1": "code",
    "catalog.spaces.v1": "atlas_id",
    "requests.requests.v1": "request_id",
    "requests.commands.v1": "case_id",
    "mobility.dossiers.v1": "mutation_id",
    "mobility.handlers.logement.v1": "mutation_id",
    "mobility.handlers.scolarite.v1": "mutation_id",
    "mobility.handlers.demenagement.v1": "mutation_id",
    "notify.commands.v1": "notification_id",
    "notify.deliveries.v1": "notification_id",
    "vault.documents.v1": "document_id",
}
SERVICES = {"catalog", "requests", "mobility", "notify", "vault"}


def with_change(path: str, value: Any) -> dict[str, Any]:
    """The HR example with one field (dotted path, list indexes allowed) replaced or removed."""
    payload = copy.deepcopy(HR_EXAMPLE)
    *parents, last = path.split(".")
    target: Any = payload
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return payload


def make_topic(name: str = "t.v1", *events: EventType, partitions: int = 1) -> Topic:
    return Topic(
        name=name,
        key="k",
        partitions=partitions,
        cleanup_policy="delete",
        events=events or (EventType(f"{name}.happened.v1", BaseModel, "x"),),
        description="d",
        owner="test",
        public=False,
    )


# ---- lookups ------------------------------------------------------------------------------------


def test_the_first_cut_of_topics_is_declared_with_its_keys():
    assert {topic.name: topic.key for topic in REGISTRY.topics()} == EXPECTED_TOPICS


def test_topic_lookup_and_unknown_topic():
    topic = REGISTRY.topic("hr.mutations.v1")
    assert (topic.partitions, topic.cleanup_policy, topic.owner) == (6, "delete", "hr")
    assert topic.dlq == "hr.mutations.v1.dlq"
    with pytest.raises(UnknownTopic):
        REGISTRY.topic("hr.mutations.v2")
    with pytest.raises(KeyError):
        REGISTRY.topic("nope")


def test_event_type_lookups_and_unknown_event_type():
    announced = REGISTRY.event_type(hr.MUTATION_ANNOUNCED)
    assert announced.data is hr.MutationAnnounced
    assert announced.dataschema == "urn:atlas:schema:fr.defense.rh.mutation.announced.v1"
    assert REGISTRY.topic_for_event(hr.MUTATION_CANCELLED).name == "hr.mutations.v1"
    for lookup in (REGISTRY.event_type, REGISTRY.topic_for_event):
        with pytest.raises(UnknownEventType):
            lookup("fr.defense.rh.mutation.unknown.v1")
    with pytest.raises(KeyError):
        REGISTRY.validate("fr.defense.rh.mutation.unknown.v1", {})


def test_event_types_lists_every_declared_type_once():
    declared = [event.type for topic in REGISTRY.topics() for event in topic.events]
    assert [event.type for event in REGISTRY.event_types()] == declared
    assert len(set(declared)) == len(declared)


def test_naming_conventions():
    for topic in REGISTRY.topics():
        assert re.fullmatch(r"[a-z]+(\.[a-z_]+)+\.v[0-9]+", topic.name), topic.name
        assert topic.owner in SERVICES | {"hr"}
        assert set(topic.consumers) <= SERVICES
        assert topic.description
        for event in topic.events:
            if topic.owner == "hr":
                assert event.type.startswith("fr.defense.rh."), event.type
            else:
                service = topic.name.split(".")[0]
                assert event.type.startswith(f"fr.defense.atlas.{service}."), event.type
            assert re.fullmatch(r"[a-z]+(\.[a-z_]+)+\.v1", event.type), event.type
            assert event.description
            assert issubclass(event.data, BaseModel)


def test_commands_are_named_as_orders():
    assert [e.type for e in REGISTRY.topic("requests.commands.v1").events] == [
        "fr.defense.atlas.requests.open_request.v1",
        "fr.defense.atlas.requests.close_request.v1",
        "fr.defense.atlas.requests.apply_case_commands.v1",
    ]
    assert [e.type for e in REGISTRY.topic("notify.commands.v1").events] == [
        "fr.defense.atlas.notify.send_notification.v1"
    ]


def test_kafka_topics_include_every_topic_and_its_dead_letter_topic():
    created = {name: (partitions, config) for name, partitions, config in REGISTRY.kafka_topics()}
    assert len(created) == 2 * len(EXPECTED_TOPICS)
    for topic in REGISTRY.topics():
        partitions, config = created[topic.name]
        assert partitions == topic.partitions
        assert config["cleanup.policy"] == topic.cleanup_policy
        dlq_partitions, dlq_config = created[topic.dlq]
        assert dlq_partitions >= 1
        assert dlq_config["cleanup.policy"] == "delete"
        assert int(dlq_config["retention.ms"]) >= 14 * 24 * 3600 * 1000
        # A message its topic took (1 MiB by default) still fits with the DLQ headers added.
        assert int(dlq_config["max.message.bytes"]) >= 2 * 1024 * 1024
    assert created["catalog.spaces.v1"][1] == {"cleanup.policy": "compact"}
    assert created["hr.mutations.v1"][1]["retention.ms"] == str(30 * 24 * 3600 * 1000)


# ---- invariants ---------------------------------------------------------------------------------


def test_a_topic_name_may_be_declared_once():
    with pytest.raises(RegistryError, match="declared twice"):
        TopicRegistry([make_topic("a.v1"), make_topic("a.v1")])


def test_an_event_type_belongs_to_one_topic():
    event = EventType("fr.defense.atlas.x.y.v1", BaseModel, "x")
    with pytest.raises(RegistryError, match=r"declared in a\.v1 and b\.v1"):
        TopicRegistry([make_topic("a.v1", event), make_topic("b.v1", event)])


def test_a_topic_needs_a_partition_and_an_event_type():
    with pytest.raises(RegistryError, match="at least one partition"):
        TopicRegistry([make_topic("a.v1", partitions=0)])
    empty = Topic("a.v1", "k", 1, "delete", (), "d", "test", False)
    with pytest.raises(RegistryError, match="no event type"):
        TopicRegistry([empty])


def test_topic_names_must_be_kafka_names_and_not_clash_with_a_dlq():
    with pytest.raises(RegistryError, match="not a valid Kafka topic name"):
        TopicRegistry([make_topic("bad name")])
    with pytest.raises(RegistryError, match="clashes with the dead-letter topic"):
        TopicRegistry([make_topic("a"), make_topic("a.dlq")])


def test_a_registry_of_test_topics_is_allowed():
    registry = TopicRegistry([make_topic("test.1234.1.abc123")])
    assert registry.topic("test.1234.1.abc123").dlq == "test.1234.1.abc123.dlq"


# ---- the HR contract (CONTRACTS.md §1) -----------------------------------------------------------


def test_the_contract_example_validates_and_is_the_published_example():
    assert HR_EXAMPLE == hr.CONTRACT_EXAMPLE
    for ce_type in (hr.MUTATION_ANNOUNCED, hr.MUTATION_AMENDED):
        mutation = REGISTRY.validate(ce_type, HR_EXAMPLE)
        assert isinstance(mutation, hr.MutationSnapshot)
        assert mutation.agent.agent_id == "2019123456"
        assert mutation.household.children[0].birth_date.isoformat() == "2016-04-12"
        assert mutation.model_dump(mode="json") == HR_EXAMPLE


def test_origin_needs_email_and_phone_are_optional_and_needs_default_to_true():
    payload = with_change("origin", ...)
    del payload["needs"], payload["agent"]["email"], payload["agent"]["phone"]
    mutation = REGISTRY.validate(hr.MUTATION_ANNOUNCED, payload)
    assert isinstance(mutation, hr.MutationAnnounced)
    assert mutation.origin is None
    assert (mutation.needs.housing, mutation.needs.move) == (True, True)
    partial = REGISTRY.validate(hr.MUTATION_ANNOUNCED, with_change("needs", {"move": False}))
    assert isinstance(partial, hr.MutationAnnounced)
    assert (partial.needs.housing, partial.needs.move) == (True, False)


def test_unknown_fields_are_accepted_and_kept_for_forward_compatibility():
    payload = with_change("agent.unit_code", "R123")
    payload["priority"] = "haute"
    mutation = REGISTRY.validate(hr.MUTATION_AMENDED, payload)
    assert mutation.model_dump(mode="json")["priority"] == "haute"
    assert mutation.model_dump(mode="json")["agent"]["unit_code"] == "R123"


@pytest.mark.parametrize(
    "insee", ["75056", "2A004", "2B033", "01001", "97411", "97502", "97611", "98735", "98818"]
)
def test_insee_codes_of_mainland_corsica_and_overseas_are_accepted(insee):
    REGISTRY.validate(hr.MUTATION_ANNOUNCED, with_change("destination.commune_insee", insee))


@pytest.mark.parametrize("code", ["99999", "20004", "00123", "96123", "97912"])
def test_codes_of_the_insee_shape_that_no_commune_has_are_valid_mutations(code):
    """An HR typo is not a broken event: mobility opens the dossier `a_orienter` (tested there)."""
    mutation = REGISTRY.validate(
        hr.MUTATION_ANNOUNCED, with_change("destination.commune_insee", code)
    )
    assert isinstance(mutation, hr.MutationAnnounced)
    assert mutation.destination.commune_insee == code


BROKEN_FIELDS = [
    ("mutation_id", "TERRE 2027"),
    ("mutation_id", ""),
    ("mutation_id", "X" * 65),
    ("mutation_id", "TERRE-2027-é"),
    ("mutation_id", ...),
    ("revision", 0),
    ("revision", -1),
    ("revision", "1"),
    ("revision", 1.5),
    ("agent.agent_id", "201912345"),
    ("agent.agent_id", "20191234567"),
    ("agent.agent_id", "20191234AB"),
    ("agent.agent_id", 2019123456),
    ("agent.phone", "0612345678"),
    ("agent.phone", "+33 6 12 34 56 78"),
    ("agent.phone", "+0612345678"),
    ("agent.phone", "+3361234567890123"),
    ("agent.email", "camille.martin"),
    ("agent.population", "reserviste"),
    ("agent.family_name", ""),
    ("destination.commune_insee", "8313"),
    ("destination.commune_insee", "831370"),
    ("destination.commune_insee", "2C004"),
    ("destination.commune_insee", "9A004"),
    ("destination.commune_insee", "2a004"),
    ("origin.commune_insee", "ABCDE"),
    ("destination", ...),
    ("report_date", "30/08/2027"),
    ("report_date", ...),
    ("household.partner", "yes"),
    ("household.children.0.birth_date", ...),
    ("household.children.0.child_ref", ""),
    ("needs.housing", "true"),
]


@pytest.mark.parametrize(("path", "value"), BROKEN_FIELDS)
def test_each_broken_field_is_rejected(path, value):
    with pytest.raises(ValidationError) as caught:
        REGISTRY.validate(hr.MUTATION_ANNOUNCED, with_change(path, value))
    located = {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}
    assert any(location.startswith(path) for location in located), located


def test_cancelled_carries_mutation_revision_agent_and_reason():
    payload = {
        "mutation_id": "TERRE-2027-004211",
        "revision": 3,
        "agent": {"agent_id": "2019123456"},
        "reason": "Affectation annulée",
    }
    cancelled = REGISTRY.validate(hr.MUTATION_CANCELLED, payload)
    assert isinstance(cancelled, hr.MutationCancelled)
    for broken in ({"reason": ...}, {"revision": 0}, {"agent": {"agent_id": "123"}}):
        changed = {**payload, **broken}
        changed = {key: value for key, value in changed.items() if value is not ...}
        with pytest.raises(ValidationError):
            REGISTRY.validate(hr.MUTATION_CANCELLED, changed)


def test_a_prefixed_registry_renames_every_topic_and_keeps_the_rest() -> None:
    from atlas_events.registry import REGISTRY, prefixed_registry

    assert prefixed_registry("") is REGISTRY
    isolated = prefixed_registry("t1.")
    assert isolated is prefixed_registry("t1.")  # built once per prefix
    assert [t.name for t in isolated.topics()] == [f"t1.{t.name}" for t in REGISTRY.topics()]
    spaces = isolated.topic_for_event(catalog.SPACE_SNAPSHOT)
    assert spaces.name == "t1.catalog.spaces.v1"
    assert spaces.kafka_config() == REGISTRY.topic("catalog.spaces.v1").kafka_config()
