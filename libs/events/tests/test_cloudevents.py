"""CloudEvents envelope: creation, Kafka binary mode, HTTP structured mode, malformed input."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from atlas_events.cloudevents import (
    CloudEvent,
    InvalidEvent,
    KafkaMessage,
    NewMessages,
    from_kafka,
    from_structured,
    new_message,
    to_kafka,
    to_structured,
)
from atlas_events.schemas import hr

TYPE = "fr.defense.atlas.test.thing.happened.v1"
SOURCE = "urn:atlas:test"


class Thing(BaseModel):
    name: str
    when: date


def sample_event(**overrides: object) -> CloudEvent:
    attributes: dict[str, object] = {
        "id": "0d5c6a55-3f6b-4d39-9a43-0a9f4f1c2b7e",
        "source": SOURCE,
        "type": TYPE,
        "time": datetime(2027, 5, 1, 8, 0, 0, 123456, tzinfo=UTC),
        "subject": "dossier/TERRE-2027-004211",
        "dataschema": "urn:atlas:schema:" + TYPE,
        "data": {"ville": "Saint-Étienne", "emoji": "🪖", "n": 3, "ok": True, "none": None},
        "extensions": {"traceparent2": "abc", "partitionkey": "2019123456"},
    }
    attributes.update(overrides)
    return CloudEvent.model_validate(attributes)


def binary_headers(**overrides: bytes | None) -> list[tuple[str, bytes | None]]:
    headers: dict[str, bytes | None] = {
        "ce_specversion": b"1.0",
        "ce_id": b"42",
        "ce_source": SOURCE.encode(),
        "ce_type": TYPE.encode(),
        "ce_time": b"2027-05-01T08:00:00Z",
        "content-type": b"application/json",
    }
    for name, value in overrides.items():
        name = name.replace("__", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return list(headers.items())


# ---- creation -----------------------------------------------------------------------------------


def test_create_fills_id_time_and_dumps_a_model_in_json_mode():
    before = datetime.now(UTC)
    event = CloudEvent.create(TYPE, SOURCE, Thing(name="x", when=date(2027, 8, 30)))
    assert len(event.id) == 36
    assert event.id != CloudEvent.create(TYPE, SOURCE, {}).id
    assert event.time is not None
    assert event.time.utcoffset() == timedelta(0)
    assert before <= event.time <= datetime.now(UTC)
    assert event.specversion == "1.0"
    assert event.datacontenttype == "application/json"
    assert event.data == {"name": "x", "when": "2027-08-30"}
    assert event.extensions == {}


def test_create_keeps_given_attributes_and_makes_mapping_data_json():
    when = datetime(2027, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    event = CloudEvent.create(
        TYPE,
        SOURCE,
        {"at": when, "tags": ("a", "b")},
        subject="s",
        id="my-id",
        time=when,
        extensions={"tenant": "toulon"},
    )
    assert (event.id, event.subject, event.time) == ("my-id", "s", when)
    assert event.data == {"at": "2027-05-01T10:00:00+02:00", "tags": ["a", "b"]}
    assert event.extensions == {"tenant": "toulon"}


def test_create_refuses_a_naive_time_and_unserialisable_data():
    with pytest.raises(ValidationError, match="timezone"):
        CloudEvent.create(TYPE, SOURCE, {}, time=datetime(2027, 5, 1))
    with pytest.raises(ValidationError, match="JSON"):
        CloudEvent.create(TYPE, SOURCE, {"x": object()})


@pytest.mark.parametrize(
    ("extensions", "reason"),
    [
        ({"TraceId": "x"}, "invalid extension attribute name 'TraceId'"),
        ({"trace_id": "x"}, "invalid extension attribute name 'trace_id'"),
        ({"data": "x"}, "extension attribute name 'data' is reserved"),
        ({"subject": "x"}, "extension attribute name 'subject' is reserved"),
    ],
)
def test_extension_names_follow_the_spec(extensions, reason):
    with pytest.raises(ValidationError, match=reason):
        CloudEvent.create(TYPE, SOURCE, {}, extensions=extensions)


def test_required_attributes_cannot_be_empty():
    for attribute in ("id", "source", "type"):
        with pytest.raises(ValidationError, match=attribute):
            sample_event(**{attribute: ""})


def test_model_json_round_trip_for_storage():
    event = sample_event()
    dumped = event.model_dump_json()
    assert '"time":"2027-05-01T08:00:00.123456Z"' in dumped
    assert CloudEvent.model_validate_json(dumped) == event


# ---- Kafka binary mode --------------------------------------------------------------------------


def test_binary_round_trip_with_extensions_and_unicode():
    event = sample_event()
    message = to_kafka(event, key="2019123456")
    assert isinstance(message, KafkaMessage)
    assert message.key == b"2019123456"
    assert message.headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"0d5c6a55-3f6b-4d39-9a43-0a9f4f1c2b7e"),
        ("ce_source", b"urn:atlas:test"),
        ("ce_type", TYPE.encode()),
        ("ce_time", b"2027-05-01T08:00:00.123456Z"),
        ("ce_subject", b"dossier/TERRE-2027-004211"),
        ("ce_dataschema", b"urn:atlas:schema:" + TYPE.encode()),
        ("ce_partitionkey", b"2019123456"),
        ("ce_traceparent2", b"abc"),
        ("content-type", b"application/json"),
    ]
    assert message.value is not None
    assert "Saint-Étienne".encode() in message.value  # UTF-8, not \u escapes
    assert json.loads(message.value) == event.data
    assert from_kafka(message.headers, message.value) == event


def test_binary_key_may_be_bytes_or_absent_and_data_may_be_null():
    event = sample_event(data=None, subject=None, dataschema=None, extensions={})
    assert to_kafka(event, key=b"\x00k").key == b"\x00k"
    message = to_kafka(event)
    assert message.key is None
    assert message.value is None
    assert [name for name, _ in message.headers] == [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "content-type",
    ]
    assert from_kafka(message.headers, message.value) == event


def test_from_kafka_ignores_foreign_headers_and_accepts_tuples():
    headers = (
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        *binary_headers(),
        ("x-dlq-reason", b"\xff not utf-8 either"),
    )
    event = from_kafka(headers, b'{"a": 1}')
    assert event.id == "42"
    assert event.data == {"a": 1}
    assert event.extensions == {}
    assert event.time == datetime(2027, 5, 1, 8, tzinfo=UTC)


def test_from_kafka_defaults_content_type_and_keeps_json_parameters():
    event = from_kafka(binary_headers(content__type=None), b"[1]")
    assert event.datacontenttype == "application/json"
    event = from_kafka(binary_headers(content__type=b"application/json; charset=utf-8"), b"[1]")
    assert event.datacontenttype == "application/json; charset=utf-8"


def test_from_kafka_reads_time_offsets_and_nanoseconds():
    event = from_kafka(binary_headers(ce_time=b"2027-05-01T10:00:00.123456789+02:00"), b"{}")
    assert event.time == datetime(2027, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert event.time is not None
    assert event.time.utcoffset() == timedelta(hours=2)


def test_from_kafka_accepts_a_structured_mode_record():
    event = sample_event()
    headers = [("content-type", b"application/cloudevents+json; charset=UTF-8")]
    assert from_kafka(headers, to_structured(event)) == event


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        (binary_headers(ce_id=None), b"{}", "missing header ce_id"),
        (binary_headers(ce_source=None), b"{}", "missing header ce_source"),
        (binary_headers(ce_type=None), b"{}", "missing header ce_type"),
        (binary_headers(ce_specversion=None), b"{}", "missing header ce_specversion"),
        (binary_headers(ce_specversion=b"0.3"), b"{}", "unsupported specversion 0.3"),
        (binary_headers(), b"{not json", "value is not valid JSON: "),
        (binary_headers(), b'{"a": NaN}', "value is not valid JSON: NaN is not a JSON value"),
        (binary_headers(), b'"\xff"', "value is not valid JSON: "),
        (binary_headers(ce_id=b"\xff\xfe"), b"{}", "header ce_id is not valid UTF-8"),
        ([*binary_headers(), ("ce_id", b"43")], b"{}", "duplicate header ce_id"),
        ([*binary_headers(), ("content-type", b"a/b")], b"{}", "duplicate header content-type"),
        ([*binary_headers(), ("ce_source", None)], b"{}", "header ce_source has no value"),
        (binary_headers(ce_id=b""), b"{}", "invalid id: String should have at least 1 character"),
        (binary_headers(ce_time=b"yesterday"), b"{}", "invalid time: not an RFC 3339 timestamp"),
        (binary_headers(ce_time=b"2027-05-01T08:00:00"), b"{}", "not an RFC 3339 timestamp"),
        (binary_headers(ce_time=b"2027-13-01T08:00:00Z"), b"{}", "invalid time: month must be"),
        ([*binary_headers(), ("ce_Trace-Id", b"x")], b"{}", "invalid header ce_Trace-Id"),
        ([*binary_headers(), ("ce_datacontenttype", b"x")], b"{}", "use the content-type header"),
        ([*binary_headers(), ("ce_data", b"x")], b"{}", "the data is the message value"),
        (
            binary_headers(content__type=b"text/plain"),
            b"hello",
            "unsupported content-type text/plain: only JSON data is supported",
        ),
        (
            [("content-type", b"application/cloudevents+json")],
            None,
            "structured-mode message has no value",
        ),
        (
            [("content-type", b"application/cloudevents+json")],
            b'{"specversion": "1.0"}',
            "missing attribute id",
        ),
    ],
)
def test_from_kafka_explains_what_is_malformed(headers, value, reason):
    with pytest.raises(InvalidEvent) as caught:
        from_kafka(headers, value)
    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason


def test_invalid_event_is_a_plain_exception():
    error = InvalidEvent("missing header ce_id")
    assert isinstance(error, Exception)
    assert error.reason == "missing header ce_id"


# ---- HTTP structured mode -----------------------------------------------------------------------


def test_structured_round_trip_with_extensions_and_unicode():
    event = sample_event()
    body = to_structured(event)
    document = json.loads(body)
    assert document == {
        "specversion": "1.0",
        "id": event.id,
        "source": SOURCE,
        "type": TYPE,
        "time": "2027-05-01T08:00:00.123456Z",
        "subject": "dossier/TERRE-2027-004211",
        "datacontenttype": "application/json",
        "dataschema": "urn:atlas:schema:" + TYPE,
        "partitionkey": "2019123456",
        "traceparent2": "abc",
        "data": event.data,
    }
    assert "🪖".encode() in body
    assert from_structured(body) == event
    assert from_structured(body.decode()) == event
    assert from_structured(document) == event


def test_structured_without_data_and_optional_attributes():
    event = sample_event(data=None, time=None, subject=None, dataschema=None, extensions={})
    document = json.loads(to_structured(event))
    assert "data" not in document
    assert "time" not in document
    assert from_structured(document) == event


def test_structured_extension_values_take_their_canonical_string_form():
    document = {"specversion": "1.0", "id": "1", "source": SOURCE, "type": TYPE}
    event = from_structured({**document, "retry": 3, "replayed": True, "note": "x", "gone": None})
    assert event.extensions == {"retry": "3", "replayed": "true", "note": "x"}
    assert event.datacontenttype == "application/json"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{oops", "body is not valid JSON: "),
        ("[1, 2]", "body is not a JSON object"),
        ('{"id": "1", "source": "s", "type": "t"}', "missing attribute specversion"),
        ({"specversion": "1.0", "source": "s", "type": "t"}, "missing attribute id"),
        ({"specversion": "1.0", "id": "1", "type": "t"}, "missing attribute source"),
        ({"specversion": "1.0", "id": "1", "source": "s"}, "missing attribute type"),
        (
            {"specversion": "0.3", "id": "1", "source": "s", "type": "t"},
            "unsupported specversion 0.3",
        ),
        (
            {"specversion": 1.0, "id": "1", "source": "s", "type": "t"},
            "specversion must be a string",
        ),
        (
            {"specversion": "1.0", "id": 1, "source": "s", "type": "t"},
            "attribute id must be a string",
        ),
        (
            {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data_base64": "AA=="},
            "data_base64 is not supported",
        ),
        (
            {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "traceParent": "x"},
            "invalid attribute name 'traceParent'",
        ),
        (
            {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "foo": {"a": 1}},
            "extension attribute foo must be a string, an integer or a boolean",
        ),
        (
            {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": "now"},
            "invalid time: not an RFC 3339 timestamp",
        ),
        (
            {
                "specversion": "1.0",
                "id": "1",
                "source": "s",
                "type": "t",
                "datacontenttype": "text/plain",
                "data": "hello",
            },
            "invalid datacontenttype: unsupported datacontenttype text/plain",
        ),
        ({"specversion": "1.0", "id": "", "source": "s", "type": "t"}, "invalid id"),
    ],
)
def test_from_structured_explains_what_is_malformed(body, reason):
    with pytest.raises(InvalidEvent) as caught:
        from_structured(body)
    assert reason in caught.value.reason


def test_an_event_built_from_a_model_is_the_event_validation_builds():
    """`create` builds events of validated data directly; the result is what validating the
    same attributes gives."""
    data = hr.MutationCancelled.model_validate(
        {"mutation_id": "M-1", "revision": 2, "agent": {"agent_id": "2019123456"}, "reason": "x"}
    )
    when = datetime(2027, 5, 1, 8, 0, tzinfo=UTC)
    fast = CloudEvent.create(TYPE, SOURCE, data, subject="M-1", id="e-1", time=when)
    checked = CloudEvent.model_validate(
        {"id": "e-1", "source": SOURCE, "type": TYPE, "time": when, "subject": "M-1", "data": data}
    )
    assert fast == checked
    assert to_kafka(fast, "k") == to_kafka(checked, "k")
    with pytest.raises(ValidationError):
        CloudEvent.create(TYPE, SOURCE, data, subject="")


class _Planned(BaseModel):
    model_config = {"extra": "allow"}

    code: str
    due: date
    at: datetime
    ratio: float
    lines: list[dict[str, int]]


def test_new_messages_are_the_messages_of_created_events() -> None:
    """NewMessages writes what to_kafka(CloudEvent.create(...)) writes, byte for byte."""
    when = datetime(2026, 12, 7, 15, 0, 1, 123456, tzinfo=UTC)
    data = _Planned(
        code="é-1",
        due=date(2027, 3, 1),
        at=when,
        ratio=0.1,
        lines=[{"a": 1}],
        extra_field="kept",
    )
    writer = NewMessages("urn:atlas:test", time=when)
    for subject in ("s-1", None):
        ours = writer.message("t.planned.v1", data, "k", subject=subject, id="id-1")
        theirs = to_kafka(
            CloudEvent.create(
                "t.planned.v1", "urn:atlas:test", data, subject=subject, id="id-1", time=when
            ),
            "k",
        )
        assert (ours.key, ours.value, ours.headers) == (theirs.key, theirs.value, theirs.headers)
    assert new_message("t.planned.v1", "urn:atlas:test", data, time=when, id="id-1").value == (
        ours.value
    )


def test_new_messages_draw_distinct_version_4_ids_and_refuse_what_events_refuse() -> None:
    writer = NewMessages("urn:atlas:test")
    data = _Planned(code="c", due=date(2027, 1, 1), at=datetime.now(UTC), ratio=1.0, lines=[])
    ids = [dict(writer.message("t.v1", data).headers)["ce_id"].decode() for _ in range(600)]
    assert len(set(ids)) == 600
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    with pytest.raises(ValueError, match="not JSON compliant"):  # as to_kafka refuses it
        writer.message("t.v1", data.model_copy(update={"ratio": float("nan")}))
    text_not_number = data.model_copy(update={"code": "NaN and Infinity"})
    assert b"NaN and Infinity" in (writer.message("t.v1", text_not_number).value or b"")
    for bad in ({"type": ""}, {"subject": ""}, {"id": ""}):
        with pytest.raises(ValueError, match="an event"):
            writer.message(**{"type": "t.v1", "data": data, **bad})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source"):
        NewMessages("")
    with pytest.raises(ValueError, match="timezone-aware"):
        NewMessages("urn:x", time=datetime(2026, 1, 1))
