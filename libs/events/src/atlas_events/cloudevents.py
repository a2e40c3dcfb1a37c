"""CloudEvents 1.0 envelope and its Kafka (binary mode) and HTTP (structured JSON) encodings."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final, Literal, Self, cast

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

from atlas_events import jsoncodec

SPECVERSION: Final = "1.0"
JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
HEADER_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"

# Attributes the spec defines; every other attribute is an extension.
CONTEXT_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")
# Names an extension may not take: the context attributes and the JSON format's data members.
RESERVED_NAMES = CONTEXT_ATTRIBUTES | {"data", "data_base64"}

_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
# RFC 3339 date-time (section 5.6); fromisoformat alone also accepts forms RFC 3339 does not.
_RFC3339 = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)
_JSON_MEDIA_TYPE = re.compile(r"application/(?:[a-z0-9.+-]+\+)?json", re.IGNORECASE)


class InvalidEvent(Exception):
    """A message that is not a well-formed CloudEvent; `reason` says why (for logs, DLQ headers)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_valid_attribute_name(name: str) -> bool:
    """Whether `name` follows the CloudEvents naming rule (lower-case ASCII letters and digits)."""
    return _ATTRIBUTE_NAME.fullmatch(name) is not None


def is_json_content_type(content_type: str) -> bool:
    """Whether a media type (parameters allowed) denotes JSON: application/json or */*+json."""
    return _JSON_MEDIA_TYPE.fullmatch(content_type.split(";", 1)[0].strip()) is not None


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware datetime (sub-microsecond digits are dropped)."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    fraction = match["fraction"]
    micro = f".{(fraction + '00000')[:6]}" if fraction else ""
    offset = match["offset"].upper().replace("Z", "+00:00")
    return datetime.fromisoformat(match["base"].upper() + micro + offset)


def format_rfc3339(value: datetime) -> str:
    """Format an aware datetime as RFC 3339, with `Z` for UTC."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _to_json_data(data: Any) -> Any:
    """Turn event data into plain JSON values (a pydantic model is dumped in JSON mode)."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    try:
        return to_jsonable_python(data)
    except PydanticSerializationError as exc:
        raise ValueError(f"data is not JSON-serialisable: {exc}") from exc


class CloudEvent(BaseModel):
    """One CloudEvents 1.0 event whose data is JSON; extension attributes live in `extensions`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="Unique per source; consumers dedupe on it.")
    source: str = Field(min_length=1, description="URI-reference of the producing system.")
    type: str = Field(
        min_length=1, description="Event type, e.g. fr.defense.rh.mutation.announced.v1."
    )
    specversion: Literal["1.0"] = SPECVERSION
    time: AwareDatetime | None = Field(default=None, description="When the occurrence happened.")
    subject: str | None = Field(default=None, min_length=1, description="What the event is about.")
    datacontenttype: str = Field(default=JSON_CONTENT_TYPE, description="Media type of data.")
    dataschema: str | None = Field(default=None, min_length=1, description="URI of data's schema.")
    data: Any = Field(default=None, description="The event payload as JSON values.")
    extensions: dict[str, str] = Field(default_factory=dict, description="Extension attributes.")

    @field_validator("time", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        return parse_rfc3339(value) if isinstance(value, str) else value

    @field_validator("datacontenttype")
    @classmethod
    def _json_only(cls, value: str) -> str:
        if not is_json_content_type(value):
            raise ValueError(f"unsupported datacontenttype {value}: only JSON data is supported")
        return value

    @field_validator("data")
    @classmethod
    def _json_data(cls, value: Any) -> Any:
        return _to_json_data(value)

    @field_validator("extensions")
    @classmethod
    def _extension_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not is_valid_attribute_name(name):
                raise ValueError(
                    f"invalid extension attribute name {name!r}: "
                    "only lower-case ASCII letters and digits are allowed"
                )
            if name in RESERVED_NAMES:
                raise ValueError(f"extension attribute name {name!r} is reserved")
        return value

    @field_serializer("time")
    def _serialize_time(self, value: datetime | None) -> str | None:
        return None if value is None else format_rfc3339(value)

    @classmethod
    def create(
        cls,
        type: str,
        source: str,
        data: BaseModel | Mapping[str, Any],
        *,
        subject: str | None = None,
        id: str | None = None,
        time: datetime | None = None,
        extensions: Mapping[str, str] | None = None,
        dataschema: str | None = None,
    ) -> Self:
        """Build a new event with a fresh UUID id and the current UTC time unless given."""
        simple = (
            extensions is None
            and dataschema is None
            and isinstance(type, str)
            and isinstance(source, str)
            and bool(type)
            and bool(source)
            and (subject is None or (isinstance(subject, str) and bool(subject)))
            and (id is None or (isinstance(id, str) and bool(id)))
            and (time is None or (isinstance(time, datetime) and time.tzinfo is not None))
        )
        if simple and isinstance(data, BaseModel):  # validated already; a mapping is checked
            # The attributes already hold what validation would check: build it directly (a
            # burst builds several events per mutation; validating them cost a tenth of a
            # worker's CPU). The data is turned into JSON values as the validator does.
            built = cls.model_construct(
                id=id if id is not None else str(uuid.uuid4()),
                source=source,
                type=type,
                specversion=SPECVERSION,
                time=time if time is not None else datetime.now(UTC),
                subject=subject,
                datacontenttype=JSON_CONTENT_TYPE,
                dataschema=None,
                data=data.model_dump(mode="json"),
                extensions={},
            )
            return cast(Self, built)
        return cls(
            id=id if id is not None else str(uuid.uuid4()),
            source=source,
            type=type,
            time=time if time is not None else datetime.now(UTC),
            subject=subject,
            dataschema=dataschema,
            data=data if isinstance(data, BaseModel) else dict(data),
            extensions=dict(extensions or {}),
        )


@dataclass(frozen=True)
class KafkaMessage:
    """What to hand to a Kafka producer: key, value and headers, all already encoded."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


_dump_json = jsoncodec.dumps
_load_json = jsoncodec.loads


def _explain(exc: ValidationError) -> str:
    """Render a pydantic error on a CloudEvent as one human sentence per problem."""
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(item) for item in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"invalid {location}: {message}" if location else message)
    return "; ".join(parts)


def _build(attributes: dict[str, Any]) -> CloudEvent:
    try:
        return CloudEvent.model_validate(attributes)
    except ValidationError as exc:
        raise InvalidEvent(_explain(exc)) from exc


def _check_specversion(value: object, where: str) -> None:
    if value is None:
        raise InvalidEvent(f"missing {where}specversion")
    if not isinstance(value, str):
        raise InvalidEvent(f"{where}specversion must be a string")
    if value != SPECVERSION:
        raise InvalidEvent(f"unsupported specversion {value}")


def to_kafka(event: CloudEvent, key: str | bytes | None = None) -> KafkaMessage:
    """Encode in the Kafka binding's binary content mode: ce_* headers, JSON data as the value."""
    attributes: list[tuple[str, str | None]] = [
        ("specversion", event.specversion),
        ("id", event.id),
        ("source", event.source),
        ("type", event.type),
        ("time", None if event.time is None else format_rfc3339(event.time)),
        ("subject", event.subject),
        ("dataschema", event.dataschema),
        *sorted(event.extensions.items()),
    ]
    headers = [
        (HEADER_PREFIX + name, value.encode()) for name, value in attributes if value is not None
    ]
    headers.append((CONTENT_TYPE_HEADER, event.datacontenttype.encode()))
    return KafkaMessage(
        key=key.encode() if isinstance(key, str) else key,
        value=None if event.data is None else _dump_json(event.data),
        headers=headers,
    )


@cache
def _holds_numbers(model: type[BaseModel]) -> bool:
    """Whether a model's JSON schema has numbers anywhere (so a float may be non-finite)."""
    try:
        return '"number"' in json.dumps(model.model_json_schema())
    except Exception:  # a schema pydantic cannot render: assume it may
        return True


class NewMessages:
    """Writes the Kafka messages of new events of one source whose data are validated models.

    A message is what `to_kafka(CloudEvent.create(type, source, data, subject=subject), key)`
    gives, built without the CloudEvent and without the data's JSON values (pydantic writes
    the JSON text itself), the source and types encoded once, the ids drawn from the system's
    random source a few hundred at a time: a burst writes several events per mutation, and
    the CloudEvent path cost three times more. Every message of a writer carries its `time`
    (default: when the writer was made), the moment of the change they describe.
    """

    def __init__(self, source: str, *, time: datetime | None = None) -> None:
        if not source:
            raise ValueError("an event needs a source")
        if time is not None and time.tzinfo is None:
            raise ValueError("an event's time must be timezone-aware")
        self._source = source.encode()
        self._time = format_rfc3339(time if time is not None else datetime.now(UTC)).encode()
        self._types: dict[str, bytes] = {}
        self._random = b""

    def message(
        self,
        type: str,
        data: BaseModel,
        key: str | bytes | None = None,
        *,
        subject: str | None = None,
        id: str | None = None,
    ) -> KafkaMessage:
        """The message of one new event (a fresh UUID id unless given)."""
        encoded_type = self._types.get(type)
        if encoded_type is None:
            if not type:
                raise ValueError("an event needs a type")
            encoded_type = self._types[type] = type.encode()
        if subject == "" or id == "":
            raise ValueError("an event's subject and id, when given, are not empty")
        value = to_json(data)
        if b"null" in value and _holds_numbers(data.__class__):
            # pydantic writes a non-finite float as null; the strict codec refuses it, as the
            # CloudEvent path does.
            value = _dump_json(data.model_dump(mode="json"))
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", id.encode() if id is not None else self._new_id()),
            ("ce_source", self._source),
            ("ce_type", encoded_type),
            ("ce_time", self._time),
        ]
        if subject is not None:
            headers.append(("ce_subject", subject.encode()))
        headers.append((CONTENT_TYPE_HEADER, b"application/json"))
        return KafkaMessage(
            key=key.encode() if isinstance(key, str) else key, value=value, headers=headers
        )

    def _new_id(self) -> bytes:
        """A random (version 4) UUID, as text."""
        if not self._random:
            self._random = os.urandom(16 * 256)
        raw = bytearray(self._random[:16])
        self._random = self._random[16:]
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode()


def new_message(
    type: str,
    source: str,
    data: BaseModel,
    key: str | bytes | None = None,
    *,
    subject: str | None = None,
    id: str | None = None,
    time: datetime | None = None,
) -> KafkaMessage:
    """The Kafka message of one new event whose data is a validated model (`NewMessages`)."""
    return NewMessages(source, time=time).message(type, data, key, subject=subject, id=id)


def from_kafka(headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> CloudEvent:
    """Decode a Kafka record (binary, or structured by content-type); else InvalidEvent."""
    content_type: str | None = None
    attributes: dict[str, Any] = {}
    extensions: dict[str, str] = {}
    for name, raw in headers:
        is_content_type = name.lower() == CONTENT_TYPE_HEADER
        if not (is_content_type or name.startswith(HEADER_PREFIX)):
            continue  # traceparent, DLQ bookkeeping and the like belong to other layers
        if raw is None:
            raise InvalidEvent(f"header {name} has no value")
        try:
            text = raw.decode()
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"header {name} is not valid UTF-8") from exc
        if is_content_type:
            if content_type is not None:
                raise InvalidEvent(f"duplicate header {name}")
            content_type = text
            continue
        attribute = name[len(HEADER_PREFIX) :]
        if not is_valid_attribute_name(attribute):
            raise InvalidEvent(
                f"invalid header {name}: attribute names are lower-case ASCII letters and digits"
            )
        if attribute == "datacontenttype":
            raise InvalidEvent(f"header {name} is not allowed; use the content-type header")
        if attribute == "data":
            raise InvalidEvent(f"header {name} is not allowed; the data is the message value")
        if attribute in attributes or attribute in extensions:
            raise InvalidEvent(f"duplicate header {name}")
        if attribute in CONTEXT_ATTRIBUTES:
            attributes[attribute] = text
        else:
            extensions[attribute] = text

    if content_type is not None and content_type.lower().startswith("application/cloudevents"):
        if value is None:
            raise InvalidEvent("structured-mode message has no value")
        return from_structured(value)

    _check_specversion(attributes.get("specversion"), f"header {HEADER_PREFIX}")
    for required in REQUIRED_ATTRIBUTES:
        if required not in attributes:
            raise InvalidEvent(f"missing header {HEADER_PREFIX}{required}")
    content_type = content_type or JSON_CONTENT_TYPE
    if not is_json_content_type(content_type):
        raise InvalidEvent(f"unsupported content-type {content_type}: only JSON data is supported")
    data: Any = None
    if value:
        try:
            data = _load_json(value)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidEvent(f"value is not valid JSON: {exc}") from exc
    event = _build({**attributes, "datacontenttype": content_type, "extensions": extensions})
    # The strict JSON parser gave JSON values already: not walked again by the data validator
    # (an HR event's whole payload, for every event a consumer reads).
    return event if data is None else event.model_copy(update={"data": data})


def to_structured(event: CloudEvent) -> bytes:
    """Encode as a structured-mode JSON event (application/cloudevents+json), UTF-8."""
    document: dict[str, Any] = {
        "specversion": event.specversion,
        "id": event.id,
        "source": event.source,
        "type": event.type,
    }
    if event.time is not None:
        document["time"] = format_rfc3339(event.time)
    optional = {
        "subject": event.subject,
        "datacontenttype": event.datacontenttype,
        "dataschema": event.dataschema,
    }
    document.update({name: value for name, value in optional.items() if value is not None})
    document.update(sorted(event.extensions.items()))
    if event.data is not None:
        document["data"] = event.data
    return _dump_json(document)


def _extension_value(name: str, value: Any) -> str:
    """Canonical string form of a JSON-format extension value (string, integer or boolean)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    raise InvalidEvent(f"extension attribute {name} must be a string, an integer or a boolean")


def from_structured(body: bytes | str | Mapping[str, Any]) -> CloudEvent:
    """Decode a structured-mode JSON event (HTTP body or parsed mapping); else InvalidEvent."""
    if isinstance(body, Mapping):
        document: Any = body
    else:
        try:
            document = _load_json(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidEvent(f"body is not valid JSON: {exc}") from exc
    if not isinstance(document, Mapping):
        raise InvalidEvent("body is not a JSON object")
    # The JSON format treats a null attribute as an absent one.
    members = {name: value for name, value in document.items() if value is not None}
    _check_specversion(members.get("specversion"), "attribute ")
    for required in REQUIRED_ATTRIBUTES:
        if required not in members:
            raise InvalidEvent(f"missing attribute {required}")
    if "data_base64" in members:
        raise InvalidEvent("data_base64 is not supported: only JSON data is supported")

    attributes: dict[str, Any] = {}
    extensions: dict[str, str] = {}
    for name, value in members.items():
        if name == "data":
            continue
        if not isinstance(name, str) or not is_valid_attribute_name(name):
            raise InvalidEvent(
                f"invalid attribute name {name!r}: only lower-case ASCII letters and digits"
            )
        if name in CONTEXT_ATTRIBUTES:
            if not isinstance(value, str):
                raise InvalidEvent(f"attribute {name} must be a string")
            attributes[name] = value
        else:
            extensions[name] = _extension_value(name, value)
    return _build({**attributes, "data": members.get("data"), "extensions": extensions})
